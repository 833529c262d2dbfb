"""Replace the node's live socker config for a while, and put it back afterwards."""

import contextlib
import os
import signal


@contextlib.contextmanager
def replaced(path, text):
    """`path` holds `text` inside the with-block and its old bytes, mode and owner after it."""
    original = path.read_bytes()
    st = path.stat()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    _write(path, text, st)
    try:
        yield
    finally:
        _write(path, original, st)


def _write(path, data, st):
    tmp = path.with_name(path.name + ".bench-tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, st.st_mode & 0o7777)
    os.replace(tmp, path)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
