"""The value types that several modules share: what the container is, and what the host showed.

They sit below every other module of socker's, so that imports run one way:
`hostpaths` and `userdb` produce them, `policy` decides with them, `engine`
and `runner` consume them.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mount:
    source: str  # real host path, no symlinks
    target: str  # absolute, normalised path inside the container
    read_only: bool


@dataclass(frozen=True)
class HostView:
    """What `hostpaths` found on the host, as the caller."""
    cwd: str | None  # the caller's current directory, physical path; None if unreachable
    realpaths: dict  # host path -> (real path, kind) with kind "dir" or "file", or None if missing
    writable: frozenset = frozenset()  # the real directories among them, and the cwd, the caller may write


@dataclass(frozen=True)
class ContainerSpec:
    image: str  # canonical reference that the allow-list admitted
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
    limits: object  # config.Limits outside a job; None inside one, where the job's cgroups bind
