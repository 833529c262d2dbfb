"""The puller: a root child that gets one image onto the node for its socker, pulling it if it must.

With the guardian, the part of socker that keeps root for good. It is forked with
every uid 0 and leaves the caller's session, signals and limits (`detach`) and the
caller's job (`cgroups.leave_job`): it pulls for the node, and nothing a user does to
their own socker, terminal or job stops it. Only pullers hold the node's lock on an
image's pull (`pulllock`): the first pulls, the others wait for it and take over if it
dies without a word. It alone reads the registry's credentials, and keeps them out of
everything it says.

It reports to its socker through a pipe, one JSON object a line: {"waiting": true} if
another pull is under way, the engine's progress messages as {"progress": ...}, then
its last word: {"pulled": DIGEST}, {"present": true} (another pulled it) or {"failed": REASON}. A socker that is
stopped or slow must not hold the pull up: a progress line the pipe has no room for is
dropped, and the last word, said after the lock is let go, waits a while for room and
then is dropped too (its socker then asks the engine). A socker that is gone is no
reason to stop: others may be waiting. The pull is recorded for `socker prune` before
the engine is asked for it, and one audit record says whose socker caused it, what was
pulled, its digest, and how it ended.
"""

import json
import os
import select
import time

from .. import audit, config, registrytrust
from ..engine import Engine
from ..errors import (DigestMismatch, DiskFull, EngineError, NotFound, PullStalled, SockerError, TimedOut,
                      Unauthorized, Unreachable, Untrusted)
from ..host import cgroups, jobs
from ..host.privileges import detach
from ..value import Value
from . import pulled, pulllock

# A waiter gives a pull whose holder is silent this long beyond the registry's own time-out.
_GRACE = 30
_LAST_WORD_PATIENCE = 30  # seconds the last word waits for room in the pipe
_MAX_REASON = 2048  # a reason is cut to this, so that the last word fits the pipe whole


class Order(Value):
    """One image to get onto the node, for whom."""
    reference: object  # imageref.Reference, allowed
    registry: object  # config.Registry: the listed registry it comes from
    settings: object  # config.Config
    identity: object  # privileges.Identity of the caller


def start(order, privileges):
    """Fork the puller of `order`; returns (its pid, the descriptor its reports arrive on)."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = privileges.fork_root_child()
    if pid == 0:
        os.close(read_fd)
        try:
            detach(write_fd)
            _obtain(order, privileges, _Reports(write_fd))
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, read_fd


def _obtain(order, privileges, reports):
    since = time.monotonic_ns()
    shown = order.reference.familiar
    record = audit.Record(action="pull", user=order.identity.name, uid=order.identity.uid, image=shown)
    record.facility = order.settings.audit_facility
    try:
        job = jobs.current_job(order.identity.uid)
        if job is not None:
            cgroups.leave_job(job)
        held = pulllock.acquire(order.reference, since, order.registry.timeout + _GRACE,
                                lambda: reports.progress({"waiting": True}))
        if isinstance(held, pulllock.Outcome):  # another's pull: its puller audited it, and said what it pulled
            reports.last(_last_word(pulllock.Outcome(failure=held.failure)))
            return
        with held:
            outcome = _pull_holding(order, privileges, held, reports, record)
            held.settle(outcome)
    except Exception as e:  # whatever it is, its socker must hear of it
        reason = _reason(e, order)
        try:
            record.failed(reason)
        finally:
            reports.last({"failed": reason})
        return
    reports.last(_last_word(outcome))


def _last_word(outcome):
    if outcome.failure:
        return {"failed": outcome.failure}
    return {"pulled": outcome.digest} if outcome.digest else {"present": True}


def _pull_holding(order, privileges, lock, reports, record):
    """Pull, holding the lock; returns the Outcome, which a failure of the pull's is too."""
    reference = order.reference
    engine = Engine(order.settings.socket, privileges)
    if engine.image(reference.engine_name) is not None:
        return pulllock.Outcome()  # pulled by another socker between its socker's look and the lock
    credentials = None
    try:
        if not order.registry.insecure and registrytrust.reached_without_verified_tls(
                order.registry.host, engine.registry_config()):
            raise SockerError(config.unverified_registry(order.registry.host))
        if order.registry.credentials:
            credentials = config.load_credentials(order.registry.credentials)
        # Recorded before the engine is asked: whatever happens next, `socker prune` knows of it.
        pulled.write(reference, None, None, order.identity.name)
        digest = reference.digest
        for message in engine.pull(reference, credentials, order.registry.timeout):
            lock.touch()
            digest = _digest_in(message) or digest
            reports.progress({"progress": message})
        image = engine.image(reference.engine_name)
        if image is None or digest is None:
            raise EngineError("the engine ended the pull without the image")
        pulled.write(reference, digest, image["Id"], order.identity.name)
    except Exception as e:
        reason = _reason(e, order)
        if credentials is not None:
            reason = reason.replace(credentials.password, "***")
        if engine.image(reference.engine_name) is None:
            pulled.forget_reference(reference)
        record.failed(reason)
        return pulllock.Outcome(failure=reason)
    record.note(digest=digest, image_id=image["Id"])
    record.pulled()
    return pulllock.Outcome(digest=digest)


class _Reports:
    """The puller's side of the pipe to its socker, which never waits for long on its reader."""

    def __init__(self, fd):
        os.set_blocking(fd, False)
        self._fd = fd

    def progress(self, report):
        """Say it if the pipe has room now; else drop it."""
        self._write(report)

    def last(self, report):
        """Say it once the pipe has room, if it has room within _LAST_WORD_PATIENCE seconds."""
        poller = select.poll()
        poller.register(self._fd, select.POLLOUT)
        if poller.poll(_LAST_WORD_PATIENCE * 1000):
            self._write(report)

    def _write(self, report):
        line = json.dumps(report).encode() + b"\n"
        if len(line) > select.PIPE_BUF:
            return  # only so much goes through a pipe whole
        try:
            os.write(self._fd, line)
        except (BlockingIOError, BrokenPipeError):
            pass  # no room, or the socker that forked this one is gone: the pull goes on for the others


def _digest_in(message):
    status = message.get("status") or ""
    return status.removeprefix("Digest: ") if status.startswith("Digest: sha256:") else None


def _reason(error, order):
    shown = order.reference.familiar
    return f"cannot pull {shown}: {_cause(error, order.registry, shown, order.reference.digest)}"[
        :_MAX_REASON]


def _last_cause(detail):
    """The innermost cause of the engine's error chain ("Get ...: dial tcp ...: connection refused"),
    which names what went wrong; the rest repeats the URL the line already names by its host."""
    return detail.rsplit(": ", 1)[-1]


def _cause(error, registry, shown, digest):
    """Why the pull failed, in words that name the cause."""
    host = registry.host
    if isinstance(error, NotFound):
        return f"{shown} is not in the registry (no such image, tag or digest)"
    if isinstance(error, Unauthorized):
        if registry.credentials:
            return f"the registry {host} refused socker's credentials"
        return f"the registry {host} wants credentials, and none are configured for it"
    if isinstance(error, Unreachable):
        return f"cannot reach the registry {host}: {_last_cause(error.detail)}"
    if isinstance(error, Untrusted):
        return (f"the engine does not trust the certificate of the registry {host} "
                f"(its CA belongs in /etc/docker/certs.d/{host}/ca.crt): {_last_cause(error.detail)}")
    if isinstance(error, TimedOut):
        return f"the registry {host} did not answer within {registry.timeout} s"
    if isinstance(error, DigestMismatch):
        return f"what the registry {host} served does not match {digest or 'the digest it announced'}"
    if isinstance(error, DiskFull):
        return "the engine's disk is full (no space left on device)"
    if isinstance(error, PullStalled):
        return str(error)
    if isinstance(error, OSError):
        return f"socker's puller failed: {error.strerror or error}"
    return str(error) if isinstance(error, SockerError) else f"socker's puller failed: {error!r}"
