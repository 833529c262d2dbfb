"""The exceptions socker raises. Each becomes one line on stderr and exit status 125."""


class SockerError(Exception):
    """Base of every error socker reports itself (never the container's)."""


class UsageError(SockerError):
    """The command line is malformed."""


class ConfigError(SockerError):
    """The admin's configuration is missing, insecure or invalid."""


class PolicyError(SockerError):
    """The request is well formed but the admin's policy refuses it."""


class HostPathError(SockerError):
    """A host path the request names cannot be used (missing, unreadable, not allowed)."""


class EngineError(SockerError):
    """The container engine cannot be reached or refused a request. The class is the kind of
    failure; `detail` is why, in the engine's words where it gave some, `what` the request that
    failed (None where the message names it), `status` the engine's HTTP status (None where it
    never answered)."""

    def __init__(self, detail, *, what=None, status=None):
        self.detail, self.what, self.status = detail, what, status
        super().__init__(f"{what}: {detail}" if what else detail)


class NotFound(EngineError):
    """The engine has no such object (image, container)."""


class Conflict(EngineError):
    """The engine is already doing what was asked, or the object is in use."""


class TimedOut(EngineError):
    """The engine did not answer in the time socker gave it."""


class Unreachable(EngineError):
    """The engine could not reach an image's registry."""


class Untrusted(EngineError):
    """The engine does not trust the certificate of an image's registry."""


class Unauthorized(EngineError):
    """An image's registry refused the credentials it was given, or wanted some."""


class DigestMismatch(EngineError):
    """What a registry served does not match the digest it was asked for."""


class DiskFull(EngineError):
    """The engine ran out of disk space."""


class PullStalled(EngineError):
    """The pull another socker holds the node's lock for made no progress in the time it is given."""


class JobError(SockerError):
    """The caller's batch job or its cgroups cannot be determined safely."""
