"""Read a file only if root alone could have written it, and keep root's directories root's.

The file and every directory above it must be owned by root and not writable
by group or others; a secret (a registry's credentials) must also be readable
by root alone. Each component is opened without following symlinks and
checked through its descriptor, and the bytes returned are read from the very
descriptor that was checked, so nothing can be swapped between check and use.
"""

import os
import stat
from pathlib import PurePosixPath

from ..errors import ConfigError, SockerError

MAX_BYTES = 1 << 20


def problem(st, kind, secret=False):
    """Why a file or directory with this stat result cannot be trusted (to hold a `secret`), or None."""
    if st.st_uid != 0:
        return f"{kind} is owned by uid {st.st_uid}, not root"
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{kind} is writable by group or others (mode {mode:04o})"
    if secret and mode & 0o077:
        what = "readable" if mode & (stat.S_IRGRP | stat.S_IROTH) else "executable"
        return f"{kind} is {what} by group or others (mode {mode:04o}); it must be 0600 or stricter"
    return None


def path_problems(path, kind):
    """Every reason why `path` or a directory above it cannot be trusted (empty if none)."""
    found = []
    parts = PurePosixPath(path).parts
    for depth in range(1, len(parts) + 1):
        here = str(PurePosixPath(*parts[:depth]))
        try:
            st = os.lstat(here)
        except OSError as e:
            return found + [f"{here}: {e.strerror}"]
        if stat.S_ISLNK(st.st_mode):
            found.append(f"{here}: is a symbolic link")
            continue
        reason = problem(st, kind if depth == len(parts) else "directory")
        if reason:
            found.append(f"{here}: {reason}")
    return found


def read_trusted(path, max_bytes=MAX_BYTES, secret=False):
    """Return the contents of the root-owned file at absolute `path`, which root alone may read
    if it is a `secret`."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] != "/" or ".." in parts or len(parts) < 2:
        raise ConfigError(f"{path}: not an absolute path")
    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    here = "/"
    try:
        _require_trusted(fd, here, "directory")
        for name in parts[1:-1]:
            here = os.path.join(here, name)
            next_fd = _open_at(fd, name, here, os.O_PATH | os.O_DIRECTORY)
            os.close(fd)
            fd = next_fd
            _require_trusted(fd, here, "directory")
        file_fd = _open_at(fd, parts[-1], path, os.O_RDONLY | os.O_NONBLOCK)
    finally:
        os.close(fd)
    try:
        st = os.fstat(file_fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{path}: not a regular file")
        _require_trusted(file_fd, path, "file", secret)
        data = os.read(file_fd, max_bytes + 1)
    finally:
        os.close(file_fd)
    if len(data) > max_bytes:
        raise ConfigError(f"{path}: larger than {max_bytes} bytes")
    return data


def _open_at(dir_fd, name, shown, flags):
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except FileNotFoundError as e:
        raise ConfigError(f"{shown}: not found") from e
    except OSError as e:
        # ELOOP (a symlink) and ENOTDIR both mean the path is not what root installed.
        raise ConfigError(f"{shown}: cannot open safely: {e.strerror}") from e


def _require_trusted(fd, shown, kind, secret=False):
    reason = problem(os.fstat(fd), kind, secret)
    if reason:
        raise ConfigError(f"{shown}: insecure: {reason}")


def root_directory(path, mode):
    """Make the directory `path` (root's, with `mode`) unless it exists; either way it must be a
    directory of root's that no one else may write, and it keeps no permission beyond `mode`
    (one made by an earlier version may have had more). Needs root."""
    try:
        os.mkdir(path, mode)
        # Only the effective uid is raised: a new directory has the caller's group.
        os.chown(path, 0, 0, follow_symlinks=False)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or problem(st, "directory"):
        raise SockerError(f"{path} is not a root-owned directory writable only by root")
    if stat.S_IMODE(st.st_mode) & ~mode:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & mode)
        finally:
            os.close(fd)
