"""Password and group files that make the caller's name and groups resolve in the container.

The image's own /etc/passwd is not trusted or edited, and nothing runs in the
container as root to write one: socker writes small files on the host, as
root, in a directory only root can write, and mounts them read-only over
/etc/passwd and /etc/group.
"""

import errno
import os

from ..errors import SockerError
from ..model import Mount
from . import statedir


def render(identity):
    """The (passwd, group) texts for the caller; pure."""
    passwd = [
        "root:x:0:0:root:/root:/bin/sh",
        "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
        f"{identity.name}:x:{identity.uid}:{identity.gid}:{_field(identity.gecos)}:{identity.home}:/bin/sh",
    ]
    groups = {0: "root:x:0:", 65534: "nogroup:x:65534:"}
    primary = identity.group_name(identity.gid) or identity.name
    groups[identity.gid] = f"{primary}:x:{identity.gid}:"
    for gid in identity.groups:
        name = identity.group_name(gid)
        if name and gid not in groups:
            groups[gid] = f"{name}:x:{gid}:{identity.name}"
    return "\n".join(passwd) + "\n", "\n".join(groups.values()) + "\n"


def _field(text):
    """`text` made safe as one field of a passwd line."""
    return "".join(" " if c in ":\n" or not c.isprintable() else c for c in text)


def write(identity, name, privileges):
    """Write the files for run `name` into its state directory; returns the mounts that put them in place."""
    passwd, group = render(identity)
    directory = statedir.path(name)
    with privileges.elevated():
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                for filename, text in (("passwd", passwd), ("group", group)):
                    _write_new(fd, filename, text)
            finally:
                os.close(fd)
        except OSError as e:
            raise SockerError(f"cannot write {directory}: {e.strerror}") from e
    return (Mount(os.path.join(directory, "passwd"), "/etc/passwd", True),
            Mount(os.path.join(directory, "group"), "/etc/group", True))


def _write_new(dir_fd, filename, text):
    fd = os.open(filename, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644, dir_fd=dir_fd)
    try:
        os.fchown(fd, 0, 0)
        data = memoryview(text.encode())
        while data:  # a write may be short: the caller sets RLIMIT_FSIZE, for one
            written = os.write(fd, data)
            if written == 0:
                raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))
            data = data[written:]
    finally:
        os.close(fd)
