"""Replace the node's live socker config for a while, and always put it back.

The benchmark allow-lists its images in /etc/socker/socker.yaml, the one config every socker
on the node reads, so a benchmark that ends by an exception or a signal must not leave it
changed. Each change is one rename(2) of a complete file over the config, so that no socker
ever reads half of one. SIGINT, SIGTERM and SIGHUP are blocked from before the rename until
its undoing is armed, and again while the old text goes back: a signal that comes then waits
until the swap is complete. Inside the with-block the three raise KeyboardInterrupt, so that
the block unwinds and the config is restored (left to their defaults, SIGTERM and SIGHUP would
end the process on the spot); the caller's handlers are put back afterwards. (The signal mask
is the thread's: the benchmark runs in one thread.)
"""

import contextlib
import os
import signal
import tempfile

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def replaced(path, text):
    """`path` holds `text` inside the with-block, and its old bytes, mode and owner after it."""
    original = path.read_bytes()
    st = path.stat()
    callers_handlers = {}
    swapped = False
    try:
        with _signals_blocked():
            callers_handlers = {sig: signal.signal(sig, _interrupt) for sig in SIGNALS}
            _write(path, text, st)
            swapped = True
        # A signal that came during the swap has been raised by now, inside the try.
        yield
    finally:
        with _signals_blocked():
            try:
                if swapped:
                    _write(path, original, st)
            finally:
                for sig, handler in callers_handlers.items():
                    signal.signal(sig, handler)
        # A signal that came during the restore now reaches the caller's handler.


@contextlib.contextmanager
def _signals_blocked():
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _write(path, data, st):
    """Replace `path` by a file holding `data`, with the mode and owner in `st`, in one rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")
