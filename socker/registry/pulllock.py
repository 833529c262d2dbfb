"""The node's lock on one image's pull: a file of the image's own under /run/socker/pulls, flock(2)ed.

Only pullers (`puller`), root children out of every user's reach, ever open it: no
signal, terminal, job freezer or full pipe of a user's can keep it held. The holder
pulls; before it lets go it writes how the pull ended into the file and removes the
file, so that nothing is left once no pull is under way, whatever names users try.
Those that wait hold the same file open and read the outcome from it when the lock
comes free. A file still named when its lock comes free belonged to a holder that
died without a word (killed): the next takes over.

The holder touches the file whenever the engine reports progress. A waiter waits
as long as the file is touched at least once every `patience` seconds.
"""

import errno
import fcntl
import json
import os
import threading
import time

from ..errors import PullStalled, SockerError
from ..host import securefile, statedir
from ..value import Value

LOCK_DIRECTORY = "/run/socker/pulls"
_MAX_OUTCOME = 65536


class Outcome(Value):
    """How a pull ended: `failure` says why it failed; else the image is there, pulled with `digest`
    (None when the holder found it there already)."""
    digest: str | None = None
    failure: str | None = None


def acquire(reference, since, patience, on_wait):
    """The lock of `reference` (an imageref.Reference, by its canonical spelling), held, if this
    process is to pull it; else the Outcome of the pull that another ended after `since`
    (time.monotonic_ns()). Calls on_wait() once, when it first finds the lock held. Needs root."""
    directory = _open_directory()
    filename = reference.file_name
    waited = False
    try:
        while True:
            fd = os.open(filename, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=directory)
            try:
                os.fchown(fd, 0, 0)  # a root child keeps the caller's gid
                if not _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                    if not waited:
                        on_wait()
                        waited = True
                    _wait_for_holder(fd, fcntl.LOCK_SH, patience)  # shared: every waiter looks at once
                    outcome = _outcome(fd, since)
                    if outcome is not None:
                        return outcome
                    # Its holder died without a word: the first of those that waited takes over, and
                    # the others wait for that one in turn.
                    _wait_for_holder(fd, fcntl.LOCK_EX, patience)
                    outcome = _outcome(fd, since)
                    if outcome is not None:
                        return outcome
                if _named(fd, directory, filename):
                    os.utime(fd)
                    lock, fd, directory = PullLock(fd, directory, filename), None, None
                    return lock
                # Removed by a holder that could not leave its outcome: the file named now counts.
            finally:
                if fd is not None:
                    os.close(fd)
    except OSError as e:
        raise SockerError(f"cannot lock the pull in {LOCK_DIRECTORY}: {e.strerror}") from e
    finally:
        if directory is not None:
            os.close(directory)


class PullLock:
    """The lock of one image's pull, held by the process that pulls it."""

    def __init__(self, fd, directory, filename):
        self._fd, self._directory, self._filename = fd, directory, filename

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def touch(self):
        """Say that the pull makes progress: a waiter's patience starts again."""
        os.utime(self._fd)

    def settle(self, outcome):
        """Leave `outcome` for those that wait. A write that fails (a file-size limit that root could
        not lift) leaves them nothing to read: they take over, as after a holder that was killed."""
        fields = {"digest": outcome.digest, "failure": outcome.failure, "at": time.monotonic_ns()}
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(fields).encode()[:_MAX_OUTCOME], 0)
        except OSError:
            pass

    def release(self):
        """Remove the file, then let go: the kernel would let go of it too, however this process ends."""
        if self._fd is None:
            return
        try:
            if _named(self._fd, self._directory, self._filename):
                os.unlink(self._filename, dir_fd=self._directory)
        finally:
            os.close(self._fd)
            os.close(self._directory)
            self._fd = None


def sweep():
    """Remove the lock files no one holds (left by pullers that were killed); returns how many. Needs root."""
    try:
        directory = os.open(LOCK_DIRECTORY, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    removed = 0
    try:
        for filename in os.listdir(directory):
            try:
                fd = os.open(filename, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
            except FileNotFoundError:
                continue  # its holder removed it meanwhile
            try:
                if _lock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB) and _named(fd, directory, filename):
                    os.unlink(filename, dir_fd=directory)
                    removed += 1
            finally:
                os.close(fd)
    finally:
        os.close(directory)
    return removed


def _open_directory():
    try:
        securefile.root_directory(os.path.dirname(LOCK_DIRECTORY), statedir.MODE)
        securefile.root_directory(LOCK_DIRECTORY, 0o700)
        return os.open(LOCK_DIRECTORY, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise SockerError(f"cannot open {LOCK_DIRECTORY}: {e.strerror}") from e


def _lock(fd, operation):
    try:
        fcntl.flock(fd, operation)
        return True
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise


def _named(fd, directory, filename):
    """Whether the file open at `fd` is still the one named `filename` in `directory`."""
    try:
        named = os.stat(filename, dir_fd=directory, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _wait_for_holder(fd, operation, patience):
    """Until the lock `operation` asks for is granted, or PullStalled once the holder has not touched
    the file for `patience` seconds.

    flock(2) has no time-out: a thread waits in it, and this one watches the file's time."""
    result = []
    done = threading.Event()

    def wait():
        try:
            fcntl.flock(fd, operation)
        except OSError as e:
            result.append(e)
        done.set()

    threading.Thread(target=wait, daemon=True).start()
    while not done.wait(max(patience - (time.time() - os.fstat(fd).st_mtime), 0.1)):
        if time.time() - os.fstat(fd).st_mtime >= patience:
            raise PullStalled(f"the pull another socker started has made no progress for {patience} s")
    if result:
        raise result[0]


def _outcome(fd, since):
    try:
        fields = json.loads(os.pread(fd, _MAX_OUTCOME, 0) or b"{}")
        if fields.get("at", 0) > since:
            return Outcome(digest=fields.get("digest"), failure=fields.get("failure"))
    except (ValueError, TypeError, AttributeError):
        pass
    return None
