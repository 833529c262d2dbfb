"""socker: run allow-listed Docker images as the calling user, inside the caller's job.

The modules stand in layers, and a module imports only from its own layer or those below
(tests/test_code.py holds it):

1. values: `errors`, `value`, `model`, `text`, `environ`: what the others share;
2. `host`: the machine socker runs on, as root sees it and as the caller may: privileges,
   trusted files, the caller's job and its cgroups, GPUs, run state, host paths;
3. decisions and the engine: `audit`, `imageref`, `registrytrust`, `config`, `policy`,
   `engine` (the one package that speaks to the Docker engine);
4. `registry` (getting images onto the node: one pull per node, the puller, prune) and `run`
   (one container's life: the runner, the guardian, the caller's session), which do not
   import each other;
5. the commands: `cli` parses, `commands` does, `__main__` starts and ends.
"""

__version__ = "0.1.0"
