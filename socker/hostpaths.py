"""Resolve the host paths a request names, with the caller's own permissions.

Called while the effective uid is the caller's, so a path the caller cannot
reach is missing here, and nothing is ever created.
"""

import os
import stat

from .policy import HostView


def look(paths):
    """Return a HostView of the current directory and the real path and kind of each of `paths`."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None  # deleted or unreadable: policy decides whether it matters
    return HostView(cwd=cwd, realpaths={path: _resolve(path) for path in paths})


def _resolve(path):
    try:
        real = os.path.realpath(path, strict=True)
        mode = os.stat(real).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISDIR(mode):
        return real, "dir"
    if stat.S_ISREG(mode):
        return real, "file"
    return real, "other"
