"""Resolve the host paths a request names, with the caller's own permissions.

Called while the effective uid is the caller's, so a path the caller cannot
reach is missing here, and nothing is ever created.
"""

import ctypes
import os
import stat

from ..errors import HostPathError
from ..model import HostView

_MS_BIND, _MS_REC, _MNT_DETACH = 0x1000, 0x4000, 2
_libc = ctypes.CDLL(None, use_errno=True)


def look(paths):
    """Return a HostView of the current directory and the real path and kind of each of `paths`."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None  # deleted or unreadable: policy decides whether it matters
    realpaths = {path: _resolve(path) for path in paths}
    directories = {resolved[0] for resolved in realpaths.values() if resolved and resolved[1] == "dir"}
    if cwd is not None:
        directories.add(cwd)
    writable = frozenset(d for d in directories if os.access(d, os.W_OK, effective_ids=True))
    return HostView(cwd=cwd, realpaths=realpaths, writable=writable)


def _resolve(path):
    try:
        real = os.path.realpath(path, strict=True)
        mode = os.stat(real).st_mode
    except (OSError, ValueError):
        return None
    # Mounting must not let the caller reach into what they cannot open themselves.
    if stat.S_ISDIR(mode):
        return (real, "dir") if os.access(real, os.R_OK | os.X_OK, effective_ids=True) else None
    if stat.S_ISREG(mode):
        return (real, "file") if os.access(real, os.R_OK, effective_ids=True) else None
    return real, "other"


class Pinned:
    """The open descriptors of checked sources, in order; close() may be called more than once."""

    def __init__(self, descriptors):
        self.descriptors = list(descriptors)

    def close(self):
        while self.descriptors:
            os.close(self.descriptors.pop())


def pin(mounts):
    """Open each mount's source, as the caller; returns them Pinned, in order.

    The engine resolves a bind source by path, as root, when the container starts: a caller
    who can write a directory on that path could swap it for a symlink after it was checked.
    The descriptor holds the very object that was checked, whatever later happens to the path;
    `stage` mounts it where the caller cannot reach.
    """
    pinned = Pinned([])
    try:
        for mount in mounts:
            fd = os.open(mount.source, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            pinned.descriptors.append(fd)
            kind = stat.S_IFMT(os.fstat(fd).st_mode)
            if kind not in (stat.S_IFDIR, stat.S_IFREG) or os.readlink(f"/proc/self/fd/{fd}") != mount.source:
                raise HostPathError(f"{mount.source} changed while socker was checking it")
    except (OSError, HostPathError) as e:
        pinned.close()
        if isinstance(e, HostPathError):
            raise
        raise HostPathError(f"{mount.source}: {e.strerror}") from e
    return pinned


def stage(mounts, pinned, staging):
    """Bind each pinned source at STAGING/N, a new directory that only root can reach; needs root.

    Returns the mounts with those paths as sources: nothing the caller can write lies on them.
    The mounts hold the sources from now on: `pinned` is closed, however this ends.
    """
    try:
        os.mkdir(staging, 0o700)
        staged = []
        for index, (mount, fd) in enumerate(zip(mounts, pinned.descriptors)):
            point = os.path.join(staging, str(index))
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.mkdir(point, 0o700)
            else:
                os.close(os.open(point, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600))
            if _libc.mount(f"/proc/self/fd/{fd}".encode(), point.encode(), None, _MS_BIND | _MS_REC, None) != 0:
                raise HostPathError(f"cannot bind {mount.source}: {os.strerror(ctypes.get_errno())}")
            staged.append(mount.replace(source=point))
        return tuple(staged)
    except OSError as e:
        raise HostPathError(f"cannot stage the mounts: {e.strerror}") from e
    finally:
        pinned.close()


def unstage(staging):
    """Undo `stage`; needs root. Never recurses: a point still mounted is left alone."""
    try:
        points = os.listdir(staging)
    except OSError:
        return  # gone, or unreadable: the caller checks what is left
    for name in points:
        point = os.path.join(staging, name)
        _libc.umount2(point.encode(), _MNT_DETACH)
        try:
            if os.path.ismount(point):
                continue
            if os.path.isdir(point):
                os.rmdir(point)
            else:
                os.unlink(point)
        except OSError:
            pass
