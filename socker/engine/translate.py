"""The one place where what goes wrong with the engine becomes socker's typed errors
(`socker.errors`: NotFound, Conflict, TimedOut, the pull failures, else EngineError), each with
the request (`what`), the engine's own words (`detail`) and its HTTP status where it gave one."""

import docker
import requests

from ..errors import (Conflict, DigestMismatch, DiskFull, EngineError, NotFound, TimedOut, Unauthorized, Unreachable,
                      Untrusted)

_BY_STATUS = {404: NotFound, 409: Conflict}

# What the engine says when a pull fails, by kind; the first kind that matches wins. The engine
# gives a pull's failure as text in the stream, with no status or code of its own.
_PULL_FAILURES = (
    (DiskFull, ("no space left on device",)),
    (DigestMismatch, ("verification failed", "digest mismatch", "did not match")),
    (Untrusted, ("x509:", "certificate")),
    (Unauthorized, ("unauthorized", "no basic auth credentials", "authentication required", "denied")),
    (NotFound, ("manifest unknown", "not found", "name unknown", "does not exist")),
    (Unreachable, ("connection refused", "no such host", "i/o timeout", "handshake timeout", "Client.Timeout",
                   "network is unreachable", "no route to host", "connection reset", "server misbehaving")),
)


def request_error(error, what, socket_path):
    """The typed error for `error`, raised by the SDK while making the request `what`."""
    if isinstance(error, docker.errors.APIError):
        kind = _BY_STATUS.get(error.status_code, EngineError)
        return kind(error.explanation or str(error), what=what, status=error.status_code)
    if isinstance(error, requests.exceptions.ReadTimeout):
        return TimedOut("the Docker engine did not answer in time", what=what)
    return unreachable(error, socket_path, what)


def unreachable(error, socket_path, what=None):
    return EngineError(f"cannot talk to the Docker engine at {socket_path}: {reason(error)}", what=what)


def pull_error(message, status=None):
    """The typed error for a pull the engine failed, saying `message` (with HTTP `status`, if any)."""
    message = str(message or "the engine gave no reason")
    kind = NotFound if status == 404 else next(
        (kind for kind, signs in _PULL_FAILURES if any(sign in message for sign in signs)), EngineError)
    return kind(message, status=status)


def stalled_or_failed(error, socket_path):
    """The typed error for a pull's connection that failed: silent too long, or broken."""
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in reason(error):
        return TimedOut("no word from the engine in the time given")
    return unreachable(error, socket_path)


def reason(error):
    """The innermost, most specific reason in an exception chain."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return str(error) or type(error).__name__
