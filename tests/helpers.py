"""What the unit tests share: one caller, one configuration, one host filesystem.

No Docker engine, no Slurm and no real users are needed: policy decisions are
taken against `fake_realpath`, a small in-memory model of the host.
"""

import posixpath

from socker import cli, model, policy
from socker.host import jobs, privileges
from socker.config import SiteMount, from_document


class FakeIdentity(privileges.Identity):
    """An Identity whose group names come from `group_names`, not from the host's group database."""
    group_names: tuple = ()  # of (gid, name)

    def group_name(self, gid):
        return dict(self.group_names).get(gid)


IDENTITY = FakeIdentity(uid=1000, gid=1000, groups=(100, 2000), name="alice", home="/home/alice",
                        gecos="Alice Liddell", group_names=((1000, "alice"), (100, "users"), (2000, "lab")))

ALLOWED_IMAGES = ("socker-test/busybox:latest", "busybox:1.36")
SITE_MOUNT = SiteMount(source="/cluster/software", target="/software", read_only=True)
CONFIG = from_document({"images": list(ALLOWED_IMAGES), "volumes": ["/scratch"]})
JOB = jobs.Job(scheduler="slurm", job_id="4242", step="0", unified=True,
               cgroups={"": "/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0"})

CALLER_ENV = {"HOME": "/home/alice", "USER": "alice", "TERM": "xterm-256color", "LANG": "C.UTF-8",
              "OMP_NUM_THREADS": "4", "LD_PRELOAD": "/home/alice/evil.so"}


def make_identity(**changes):
    return IDENTITY.replace(**changes)


def make_config(**changes):
    return CONFIG.replace(**changes)


# --- the fake host -------------------------------------------------------------------------
# Every path under one of EXISTING is there; names say what they are ("*.txt" a regular
# file, "*fifo*" something else, "*missing*" absent). SYMLINKS redirect whole subtrees.
EXISTING = ("/home", "/home/alice", "/home/bob", "/scratch", "/scratch2", "/scratchy", "/cluster/software",
            "/export", "/etc", "/var", "/tmp", "/root", "/usr/lib")
SYMLINKS = {
    "/home/alice/link-etc": "/etc",
    "/home/alice/link-scratch": "/scratch/alice",
    "/scratch/alice/link-home": "/home/alice",
    "/scratch/alice/link-bob": "/home/bob",
    "/scratch/alice/link-scratch2": "/scratch2/alice",
    "/scratch/alice/link-up": "/scratch/alice/..",  # resolves to /scratch: still allowed
    "/scratch/alice/link-root": "/",
}


def fake_realpath(path):
    """(real path, kind) of `path` on the fake host, or None if missing, as hostpaths.look reports it."""
    if not path.startswith("/") or "\0" in path:
        return None
    real = "/" + posixpath.normpath(path).lstrip("/")
    for _ in range(8):  # follow links in any component, as realpath does
        for link, target in SYMLINKS.items():
            if policy.is_within(real, link):
                real = posixpath.normpath(posixpath.join(target, posixpath.relpath(real, link)))
                break
        else:
            break
    if "missing" in real or not (real == "/" or any(policy.is_within(real, root) for root in EXISTING)):
        return None
    name = posixpath.basename(real)
    return real, "file" if name.endswith(".txt") else "other" if "fifo" in name else "dir"


# The directories (and all below them) the caller may write on the fake host.
WRITABLE = ("/home/alice", "/home/bob", "/scratch/alice", "/scratch/bob", "/tmp")


def make_host(paths, cwd="/home/alice"):
    realpaths = {p: fake_realpath(p) for p in paths}
    directories = {r[0] for r in realpaths.values() if r and r[1] == "dir"} | ({cwd} if cwd else set())
    return model.HostView(cwd=cwd, realpaths=realpaths,
                           writable=frozenset(d for d in directories if any(policy.is_within(d, w) for w in WRITABLE)))


def host_for(request, config=CONFIG, identity=IDENTITY, cwd="/home/alice", gpu_units=()):
    """The HostView `socker run` would see: the same paths commands.run asks hostpaths.look for."""
    libraries = config.gpus.libraries if gpu_units else ()
    paths = [identity.home, *config.volume_prefixes, *(m.source for m in config.site_mounts), *libraries,
             *(v.source for v in request.volumes)]
    return make_host(paths, cwd)


def authorize_run(*run_args, config=CONFIG, identity=IDENTITY, cwd="/home/alice", caller_env=CALLER_ENV,
                  job=None, gpu_units=()):
    """Parse `socker run RUN_ARGS...` and return the policy's ContainerSpec for it."""
    request = cli.parse(["run", *run_args]).action
    host = host_for(request, config, identity, cwd, gpu_units)
    return policy.authorize(request, config, identity, host, caller_env=caller_env, job=job, gpu_units=gpu_units)
