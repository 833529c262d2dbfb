"""Turn argv into a frozen request. No I/O happens here.

Only the options listed in the help text exist; anything else is an error and
is never passed on to the engine.
"""

import re

from . import text
from .environ import ENV_NAME
from .errors import UsageError
from .value import Value

USAGE = """\
Usage: socker [-v|--verbose] COMMAND [ARGS...]
       socker --version | -h | --help

Run allow-listed Docker images as yourself, inside your batch job's limits.

Commands:
  run [OPTIONS] IMAGE [COMMAND [ARG...]]
                  start a container from IMAGE running COMMAND as you
  pull IMAGE      pull an allowed image from its registry onto this node now,
                  ahead of the jobs that run it (run pulls it too, if need be)
  images          list the images the administrator allows, and which of them
                  this node has (present) or can pull (pullable)
  prune           (root) remove the images socker pulled that are no longer
                  allowed and that no container uses
  config check [FILE]
                  check a configuration file (default: the installed one) and
                  the installation; print each problem, exit 1 if there are any
  sweep           (root) remove what runs whose socker and guardian are both
                  gone left on this node: containers, mounts, state

Global options:
  -v, --verbose   say what socker does, on stderr
      --version   print socker's and the engine's versions
  -h, --help      print this help

Run options:
  -e, --env NAME[=VALUE]     set NAME in the container (NAME alone copies your value)
  -v, --volume SRC:DST[:ro]  bind-mount host path SRC at DST, where policy allows
  -w, --workdir DIR          working directory inside the container
  -i, --interactive          forward standard input to the container
  -t, --tty                  give the container a terminal
  --                         end of options
A container gets the GPUs your job holds on the node, and no other device.

Exit status: the container's own; 125 if socker refused or socker or the
engine failed; 126 if COMMAND cannot be run; 127 if COMMAND is not found in
the image; 130 if interrupted before the container started; 141 if the reader
of socker's own output went away; 1 if 'config check' found a problem.
"""

class VolumeRequest(Value):
    source: str
    target: str
    read_only: bool


class RunRequest(Value):
    image: str
    command: tuple
    env: tuple  # of (name, value or None to copy the caller's value)
    volumes: tuple  # of VolumeRequest
    workdir: str | None
    interactive: bool
    tty: bool


class PullRequest(Value):
    image: str


class ImagesRequest(Value):
    pass


class PruneRequest(Value):
    pass


class ConfigCheckRequest(Value):
    path: str | None  # None: the installed configuration


class SweepRequest(Value):
    pass


class VersionRequest(Value):
    pass


class HelpRequest(Value):
    text: str = USAGE


class Invocation(Value):
    verbose: bool
    action: object


def parse(argv):
    """Parse argv (without the program name) into an Invocation."""
    args = [text.require(arg, f"argument {position}") for position, arg in enumerate(argv, 1)]
    verbose = False
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-v", "--verbose"):
            verbose = True
        elif flag in ("-h", "--help"):
            return Invocation(verbose, HelpRequest())
        elif flag == "--version":
            return Invocation(verbose, VersionRequest())
        else:
            raise UsageError(f"unknown option {flag!r}; see 'socker --help'")
    if not args:
        raise UsageError("no command given; see 'socker --help'")
    command, rest = args[0], args[1:]
    if command == "run":
        return Invocation(verbose, _parse_run(rest))
    if command == "pull":
        if rest and rest[0].startswith("-"):
            raise UsageError(f"unknown option {rest[0]!r} for 'socker pull'; see 'socker --help'")
        if len(rest) != 1:
            raise UsageError("'socker pull' takes one IMAGE")
        return Invocation(verbose, PullRequest(rest[0]))
    if command in _PLAIN_COMMANDS:
        if rest:
            raise UsageError(f"'socker {command}' takes no arguments")
        return Invocation(verbose, _PLAIN_COMMANDS[command]())
    if command == "config":
        if rest[:1] != ["check"] or len(rest) > 2 or (len(rest) == 2 and not rest[1].startswith("/")):
            raise UsageError("usage: socker config check [/ABSOLUTE/PATH/TO/socker.yaml]")
        return Invocation(verbose, ConfigCheckRequest(rest[1] if len(rest) == 2 else None))
    raise UsageError(f"unknown command {command!r}; see 'socker --help'")


_PLAIN_COMMANDS = {"images": ImagesRequest, "prune": PruneRequest, "sweep": SweepRequest}
_RUN_FLAGS = {"-i": "interactive", "--interactive": "interactive", "-t": "tty", "--tty": "tty"}
# What `docker run` gives devices with: no such option exists here, and the refusal says where GPUs come from.
_DEVICE_OPTIONS = ("--gpus", "--device", "--device-cgroup-rule")
_BUNDLED_FLAGS = re.compile(r"-[it]{2,}\Z")
_RUN_VALUED = {
    "-e": "env", "--env": "env",
    "-v": "volume", "--volume": "volume",
    "-w": "workdir", "--workdir": "workdir",
}


def _parse_run(args):
    flags = {"interactive": False, "tty": False}
    env, volumes, workdir = [], [], None
    while args:
        arg = args[0]
        if arg == "--":
            args.pop(0)
            break
        if not arg.startswith("-") or arg == "-":
            break
        args.pop(0)
        if _BUNDLED_FLAGS.match(arg):
            args[0:0] = [f"-{letter}" for letter in arg[1:]]
            continue
        name, value = _split_option(arg, args)
        if name in ("-h", "--help"):
            return HelpRequest()
        if name in _RUN_FLAGS:
            flags[_RUN_FLAGS[name]] = True
        elif _RUN_VALUED.get(name) == "env":
            env.append(_parse_env(value))
        elif _RUN_VALUED.get(name) == "volume":
            volumes.append(_parse_volume(value))
        elif _RUN_VALUED.get(name) == "workdir":
            if not value:
                raise UsageError("option '--workdir' needs a directory")
            workdir = value
        elif name.split("=")[0] in _DEVICE_OPTIONS:
            raise UsageError(f"'socker run' has no option {name.split('=')[0]}: a container gets the GPUs of "
                             "your job (#SBATCH --gres=gpu:N) and no other device")
        else:
            raise UsageError(f"unknown option {arg!r} for 'socker run'; see 'socker run --help'")
    if not args:
        raise UsageError("'socker run' needs an IMAGE; see 'socker run --help'")
    image, command = args[0], tuple(args[1:])
    return RunRequest(
        image=image,
        command=command,
        env=tuple(env),
        volumes=tuple(volumes),
        workdir=workdir,
        interactive=flags["interactive"],
        tty=flags["tty"],
    )


def _split_option(arg, args):
    """Return (option name, value or None), taking a value from args if the option needs one."""
    if arg.startswith("--"):
        name, eq, value = arg.partition("=")
        if name in _RUN_VALUED:
            return name, value if eq else _take_value(name, args)
        if eq and name in _RUN_FLAGS:
            raise UsageError(f"option {name!r} takes no value")
        return arg if eq else name, None
    name = arg[:2]
    if name in _RUN_VALUED:
        return name, arg[2:] or _take_value(name, args)
    if len(arg) > 2:
        raise UsageError(f"unknown option {arg!r} for 'socker run'; see 'socker run --help'")
    return name, None


def _take_value(name, args):
    if not args:
        raise UsageError(f"option {name!r} needs a value")
    return args.pop(0)


def _parse_env(value):
    name, eq, val = value.partition("=")
    if not ENV_NAME.match(name):
        raise UsageError(f"invalid environment variable name {name!r}")
    return (name, val if eq else None)


def _parse_volume(value):
    parts = value.split(":")
    if len(parts) == 3 and parts[2] in ("ro", "rw"):
        read_only = parts[2] == "ro"
    elif len(parts) == 2:
        read_only = False
    else:
        raise UsageError(f"invalid volume {value!r}: expected SRC:DST or SRC:DST:ro (no ':' inside paths)")
    source, target = parts[0], parts[1]
    if not source.startswith("/") or not target.startswith("/"):
        raise UsageError(f"invalid volume {value!r}: SRC and DST must be absolute paths")
    return VolumeRequest(source=source, target=target, read_only=read_only)
