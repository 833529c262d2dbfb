"""One pull per node: an allowed image that the node lacks is pulled once, however many sockers want it.

The engine is asked first, with no lock: a node that has the image takes none.
Otherwise the sockers that want it meet at a lock file of the image's own
under /run/socker/pulls, root's alone, locked with flock(2), which the kernel
releases when its holder dies, however it dies. The first to lock it forks the
puller (`puller`), which inherits the lock and pulls; the others say that they
wait, wait on the lock together, and look again when it is free. If the puller
failed, it left its reason in the lock file and those that waited for it give
that reason, rather than try again one after another; if it died without a
word (killed), one of them takes over. The engine names an image only once all
of it is there, so nothing half-pulled is ever found.
"""

import errno
import fcntl
import hashlib
import json
import os
import sys
import time

from . import imageref, policy, puller, securefile, statedir
from .errors import EngineError, PolicyError, SockerError
from .progress import PullProgress

LOCK_DIRECTORY = "/run/socker/pulls"
_MAX_FAILURE = 65536


def obtain(reference, settings, engine, privileges, identity):
    """The image of the canonical, allowed `reference` as the node's engine has it, pulled first if
    the node lacks it; returns (image, digest) where digest is that of the pull this socker caused,
    None if it caused none."""
    shown = imageref.familiar(reference)
    name = imageref.parts(reference).engine_name
    image = engine.image(name)
    if image is not None:
        return image, None
    registry = policy.registry_for(reference, settings)
    if registry is None:
        raise PolicyError(f"image {shown} is allowed but not present on this node, and its registry "
                          f"{imageref.parts(reference).domain} is not one socker may pull from; "
                          "ask your administrator to pull it")
    with _Lock(reference, privileges) as lock:
        if lock.take():
            image = engine.image(name)  # pulled by another socker between the look and the lock
        else:
            print(f"socker: waiting for another socker to pull {shown}", file=sys.stderr, flush=True)
            image = _wait_for_others(lock, engine, name)
        if image is not None:
            return image, None
        pid, reports = puller.start(reference, registry, settings, identity, privileges, lock.fd)
    # The puller holds the lock now, for as long as it lives.
    try:
        digest = _follow(reports, shown)
    finally:
        os.close(reports)
    os.waitpid(pid, 0)
    image = engine.image(name)
    if image is None:
        raise EngineError(f"cannot pull {shown}: the engine does not have it after pulling it")
    return image, digest


def _wait_for_others(lock, engine, name):
    """Wait until the socker that holds the lock is done; the image once another socker has pulled it,
    or None when this one holds the lock to pull it itself."""
    since = time.monotonic_ns()
    for exclusive in (False, True):
        # Shared first, so that every waiter looks again at once; exclusive to take over.
        lock.wait(exclusive)
        image = engine.image(name)
        if image is not None:
            return image
        failure = lock.failure_since(since)
        if failure is not None:
            raise EngineError(failure)
    return None


def _follow(reports, shown):
    """Show the puller's progress; returns the digest it pulled, or raises the reason it failed."""
    progress = PullProgress(shown, sys.stderr, live=sys.stderr.isatty())
    pending = b""
    while chunk := os.read(reports, 65536):
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            report = json.loads(line)
            if "progress" in report:
                progress.update(report["progress"])
            elif "pulled" in report:
                progress.finished(report["pulled"])
                return report["pulled"]
            else:
                progress.abandoned()
                raise EngineError(report["failed"])
    progress.abandoned()
    raise EngineError(f"cannot pull {shown}: the pull ended without a word (it was killed)")


class _Lock:
    """The lock file of one image, opened as root; flock(2) on it, never unlinked."""

    def __init__(self, reference, privileges):
        filename = hashlib.sha256(reference.encode()).hexdigest()
        with privileges.elevated():
            try:
                securefile.root_directory(os.path.dirname(LOCK_DIRECTORY), statedir.MODE)
                securefile.root_directory(LOCK_DIRECTORY, 0o700)
                self.fd = os.open(os.path.join(LOCK_DIRECTORY, filename),
                                  os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
                os.fchown(self.fd, 0, 0)
            except OSError as e:
                raise SockerError(f"cannot open the lock of {reference} in {LOCK_DIRECTORY}: {e.strerror}") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # never LOCK_UN: a puller may share this very lock

    def take(self):
        """Lock exclusively if no one holds the lock; True if it is now this socker's."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise

    def wait(self, exclusive):
        fcntl.flock(self.fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)

    def failure_since(self, since):
        """The reason a puller gave for failing, if it failed after `since` (time.monotonic_ns)."""
        try:
            failure = json.loads(os.pread(self.fd, _MAX_FAILURE, 0) or b"{}")
            return failure["failed"] if failure.get("at", 0) > since else None
        except (ValueError, KeyError, TypeError):
            return None
