"""The value types that several modules share: what the container is, and what the host showed.

They sit below every other module of socker's, so that imports run one way:
`hostpaths` and `userdb` produce them, `policy` decides with them, `engine`
and `runner` consume them.
"""

from .value import Value


class Mount(Value):
    source: str  # real host path, no symlinks
    target: str  # absolute, normalised path inside the container
    read_only: bool


class HostView(Value):
    """What `hostpaths` found on the host, as the caller."""
    cwd: str | None  # the caller's current directory, physical path; None if unreachable
    realpaths: dict  # host path -> (real path, kind) with kind "dir" or "file", or None if missing
    writable: frozenset = frozenset()  # the real directories among them, and the cwd, the caller may write


class Limits(Value):
    """A container's own cgroup limits; None leaves that one to the cgroups above it."""
    memory_bytes: int | None
    cpus: float | None
    pids: int | None
    memory_swap_bytes: int | None = None  # memory and swap together; -1: as the cgroups above allow


class ContainerSpec(Value):
    image: object  # imageref.Reference that the allow-list admitted
    command: tuple
    uid: int
    gid: int
    groups: tuple
    env: tuple  # of "NAME=VALUE"
    mounts: tuple  # of Mount
    workdir: str
    interactive: bool
    tty: bool
    network: str
    labels: dict
    limits: Limits | None  # outside a job, the admin's; inside one, None until cgroups.place tells the job's
    ulimits: tuple = ()  # the caller's resource limits as (engine name, soft, hard); -1 is unlimited
    devices: tuple = ()  # device files the container gets, at the same paths (its GPUs)
