"""socker's state of one run on the host: /run/socker/NAME, and the lock that says whose it is.

The directory holds the caller's passwd and group files (`userdb`) and the
staged bind mounts (`hostpaths`, mounts/N). Every function here needs root.

socker and its guardian hold an flock on the directory for as long as either
lives (the kernel drops it when both are gone, however they end), so state
whose lock is free belongs to nobody, and `sweep` may remove it. The directory
is locked before it gets its name: no one ever sees it named and unlocked.
"""

import ctypes
import errno
import fcntl
import os

from ..errors import SockerError
from . import securefile

STATE_DIR = "/run/socker"
UNNAMED = ".new-"
_FILES = ("passwd", "group")
MOUNTS = "mounts"
_AT_FDCWD, _RENAME_NOREPLACE = -100, 1
_libc = ctypes.CDLL(None, use_errno=True)
# Searchable, not readable: no other user may list the runs, watch them, or open a run's directory
# to flock it (which would fail that run's start, or keep its state from the sweep).
MODE = 0o711


def path(name):
    """The root-only state directory of run `name`."""
    return os.path.join(STATE_DIR, name)


def create(name):
    """Make the state directory of run `name`, locked; returns the descriptor that holds the lock."""
    try:
        securefile.root_directory(STATE_DIR, MODE)
        unnamed = os.path.join(STATE_DIR, UNNAMED + name)
        os.mkdir(unnamed, MODE)
        try:
            fd = os.open(unnamed, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                os.fchown(fd, 0, 0)  # only the effective uid is root's: the group would be the caller's
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                _rename_noreplace(unnamed, path(name))
            except OSError:
                os.close(fd)
                raise
        except OSError:
            os.rmdir(unnamed)
            raise
    except OSError as e:
        raise SockerError(f"cannot create {path(name)}: {e.strerror}") from e
    return fd


def remove(name):
    """Remove the state directory of `name` once its mounts are gone; a point still mounted keeps it.

    Never recurses: only the names socker itself puts there are removed.
    """
    directory = path(name)
    for filename in _FILES:
        try:
            os.unlink(os.path.join(directory, filename))
        except FileNotFoundError:
            pass
    for leftover in (os.path.join(directory, MOUNTS), directory):
        try:
            os.rmdir(leftover)
        except FileNotFoundError:
            pass
        except OSError:
            return


def left_behind(name, mountinfo="/proc/self/mountinfo"):
    """What of run `name`'s state is still on the host: mount points, then the directory itself."""
    directory = path(name)
    with open(mountinfo) as f:
        found = [point for point in (line.split()[4] for line in f)
                 if point == directory or point.startswith(directory + "/")]
    if os.path.lexists(directory):
        found.append(directory)
    return found


def stale():
    """Names of the runs whose state no live socker or guardian holds, each locked for the caller.

    Returns {name: descriptor}; the caller removes the state and closes the descriptor.
    """
    try:
        entries = os.listdir(STATE_DIR)
    except FileNotFoundError:
        return {}
    found = {}
    for entry in sorted(entries):
        if not entry.startswith(("socker-", UNNAMED + "socker-")):
            continue
        try:
            fd = os.open(os.path.join(STATE_DIR, entry), os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno != errno.EWOULDBLOCK:
                raise
            continue
        found[entry] = fd
    return found


def _rename_noreplace(old, new):
    """rename(2), but never over an existing name (a plain rename replaces an empty directory)."""
    if _libc.renameat2(_AT_FDCWD, old.encode(), _AT_FDCWD, new.encode(), _RENAME_NOREPLACE) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number), new)

