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
    """The container engine cannot be reached or refused a request."""


class NotFound(EngineError):
    """The engine has no such object (image, container)."""


class Conflict(EngineError):
    """The engine is already doing what was asked, or the object is in use."""


class TimedOut(EngineError):
    """The engine did not answer in the time socker gave it."""


class JobError(SockerError):
    """The caller's batch job or its cgroups cannot be determined safely."""
