"""The puller: a root child that pulls one image through the engine, for every socker that wants it.

With the guardian, the part of socker that keeps root for good. It is forked
with every uid 0, so the caller can neither signal nor stop it and no user can
hold up another's pull, while its socker holds the image's lock
(`pulls`), which it inherits and holds for as long as it lives. It alone reads
the registry's credentials, and keeps them out of everything it says.

It reports to its socker through a pipe, one JSON object a line: each of the
engine's progress messages as {"progress": ...}, then {"pulled": DIGEST} or
{"failed": REASON}. A socker that is gone is no reason to stop: others may be
waiting. On failure it leaves the reason in the lock file for the sockers that
waited for it; on success it records the pull for `socker prune`. Either way
one audit record says whose socker caused the pull, what was pulled, its
digest, and how it ended.
"""

import json
import os
import time

from . import audit, config, imageref, pulled
from .engine import Engine
from .errors import (DigestMismatch, DiskFull, EngineError, NotFound, SockerError, TimedOut, Unauthorized,
                     Unreachable, Untrusted)
from .privileges import detach


def start(reference, registry, settings, identity, privileges, lock_fd):
    """Fork the puller of the canonical `reference` from the listed `registry`; returns (its pid,
    the descriptor its reports arrive on)."""
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    pid = privileges.fork_root_child()
    if pid == 0:
        os.close(read_fd)
        try:
            detach(write_fd, lock_fd)
            _pull(reference, registry, settings, identity, privileges, lock_fd, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    return pid, read_fd


def _pull(reference, registry, settings, identity, privileges, lock_fd, write_fd):
    os.ftruncate(lock_fd, 0)  # no earlier failure stands for this attempt
    shown = imageref.familiar(reference)
    parts = imageref.parts(reference)
    record = audit.Record(action="pull", user=identity.name, uid=identity.uid, image=shown)
    record.facility = settings.audit_facility
    credentials = None
    try:
        if registry.credentials:
            credentials = config.load_credentials(registry.credentials)
        engine = Engine(settings.socket, privileges)
        digest = parts.digest
        for message in engine.pull(reference, credentials, registry.timeout):
            digest = _digest_in(message) or digest
            _tell(write_fd, {"progress": message})
        image = engine.image(parts.engine_name)
        if image is None or digest is None:
            raise EngineError("the engine ended the pull without the image")
        pulled.write(reference, digest, image["Id"], identity.name)
    except Exception as e:  # whatever it is, those who wait must hear of it
        reason = f"cannot pull {shown}: {_cause(e, registry, shown, parts.digest)}"
        if credentials is not None:
            reason = reason.replace(credentials.password, "***")
        os.pwrite(lock_fd, json.dumps({"failed": reason, "at": time.monotonic_ns()}).encode(), 0)
        record.failed(reason)
        _tell(write_fd, {"failed": reason})
        return
    record.note(digest=digest, image_id=image["Id"])
    record.pulled()
    _tell(write_fd, {"pulled": digest})


def _digest_in(message):
    status = message.get("status") or ""
    return status.removeprefix("Digest: ") if status.startswith("Digest: sha256:") else None


def _tell(fd, report):
    try:
        os.write(fd, json.dumps(report).encode() + b"\n")
    except BrokenPipeError:
        pass  # the socker that forked this one is gone: the pull goes on for the others


def _cause(error, registry, shown, digest):
    """Why the pull failed, in words that name the cause."""
    host = registry.host
    detail = str(error).rsplit(": ", 1)[-1]
    if isinstance(error, NotFound):
        return f"{shown} is not in the registry (no such image, tag or digest)"
    if isinstance(error, Unauthorized):
        if registry.credentials:
            return f"the registry {host} refused socker's credentials"
        return f"the registry {host} wants credentials, and none are configured for it"
    if isinstance(error, Unreachable):
        return f"cannot reach the registry {host}: {detail}"
    if isinstance(error, Untrusted):
        return (f"the engine does not trust the certificate of the registry {host} "
                f"(its CA belongs in /etc/docker/certs.d/{host}/ca.crt): {detail}")
    if isinstance(error, TimedOut):
        return f"the registry {host} did not answer within {registry.timeout} s"
    if isinstance(error, DigestMismatch):
        return f"what the registry {host} served does not match {digest or 'the digest it announced'}"
    if isinstance(error, DiskFull):
        return "the engine's disk is full (no space left on device)"
    return str(error) if isinstance(error, SockerError) else f"socker's puller failed: {error!r}"
