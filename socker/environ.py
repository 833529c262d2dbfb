"""Take the caller's environment out of the process before anything reads it.

In the setuid process every variable is hostile input: the Docker SDK reads
DOCKER_*, requests reads *_PROXY and ~/.netrc, and expanduser() reads HOME.
The caller's values are kept only so that `socker run -e NAME` can copy one
into the container.
"""

import os
import re
import types

# What a variable name may look like: in -e NAME, and in what the admin lets through.
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

# HOME points nowhere so no library finds a per-user file (~/.docker/config.json, ~/.netrc).
_SANITISED = {"PATH": SAFE_PATH, "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"}


def take_environment():
    """Return a read-only copy of the caller's environment and leave only safe values behind."""
    caller = dict(os.environ)
    os.environ.clear()
    os.environ.update(_SANITISED)
    return types.MappingProxyType(caller)
