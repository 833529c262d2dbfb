"""Password and group files that make the caller's name and groups resolve in the container.

The image's own /etc/passwd is not trusted or edited, and nothing runs in the
container as root to write one: socker writes small files on the host, as
root, in a directory only root can write, and mounts them read-only over
/etc/passwd and /etc/group.
"""

import errno
import os
import stat

from .errors import SockerError
from .model import Mount

STATE_DIR = "/run/socker"


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


def state_directory(name):
    """The root-only state directory of container `name`."""
    return os.path.join(STATE_DIR, name)


def write(identity, name, privileges):
    """Write the files for container `name`; returns the mounts that put them in place."""
    passwd, group = render(identity)
    directory = state_directory(name)
    with privileges.elevated():
        try:
            _make_state_dir()
            os.mkdir(directory, 0o755)
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fchown(fd, 0, 0)
                for filename, text in (("passwd", passwd), ("group", group)):
                    _write_new(fd, filename, text)
            finally:
                os.close(fd)
        except OSError as e:
            raise SockerError(f"cannot write {directory}: {e.strerror}") from e
    return (Mount(os.path.join(directory, "passwd"), "/etc/passwd", True),
            Mount(os.path.join(directory, "group"), "/etc/group", True))


def remove(name):
    """Remove the files of container `name`; the caller must hold root. Missing files are fine."""
    directory = state_directory(name)
    for filename in ("passwd", "group"):
        try:
            os.unlink(os.path.join(directory, filename))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass


def _make_state_dir():
    # Root's files get the caller's group (only the effective uid is raised): give them root's.
    try:
        os.mkdir(STATE_DIR, 0o755)
        os.chown(STATE_DIR, 0, 0, follow_symlinks=False)
    except FileExistsError:
        pass
    st = os.lstat(STATE_DIR)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022:
        raise SockerError(f"{STATE_DIR} is not a root-owned directory writable only by root")


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
