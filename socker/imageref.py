"""Strict parsing of image references, so that allow-list matching is exact.

Only the grammar Docker itself accepts is accepted, with lower-case names and
sha256 digests. Both the administrator's entries and the caller's request are
parsed into one canonical form, a `Reference` (docker.io/library/NAME:latest for
a bare NAME), and compared whole. The one pattern is a namespace, DOMAIN/PATH/*:
the repositories directly below PATH, compared by whole components, never a
registry's top level.
"""

import hashlib
import re

from .value import Value

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z"
)
_NAMESPACE = re.compile(rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)/\*\Z")
_MAX_NAME = 255
DEFAULT_DOMAIN = "docker.io"


class Reference(Value):
    """An image reference in its canonical spelling, taken apart. Made by `parse` where a name
    enters socker (the command line, the configuration, the engine's lists, socker's pull
    records) and passed on as it is; str() gives the canonical spelling."""
    domain: str  # the registry, host[:port]
    path: str  # the repository in it
    tag: str | None  # None only where a digest pins the image
    digest: str | None

    def __str__(self):
        return self.repository + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    @property
    def repository(self):
        return f"{self.domain}/{self.path}"

    @property
    def engine_name(self):
        """The name the engine keeps the image under: REPOSITORY@DIGEST if pinned (a digest
        overrides a tag), else REPOSITORY:TAG."""
        return f"{self.repository}@{self.digest}" if self.digest else f"{self.repository}:{self.tag}"

    @property
    def familiar(self):
        """The short form people type, which `parse` maps back."""
        return familiar(str(self))

    @property
    def file_name(self):
        """The name of socker's files about this reference (its pull lock, its pull record): the
        SHA-256 of its canonical spelling, which no reference can turn into a path."""
        return hashlib.sha256(str(self).encode()).hexdigest()

    def in_namespace(self, name_space):
        """True if the repository lies directly below the canonical namespace `name_space`."""
        return self.repository.rpartition("/")[0] == name_space


def parse(reference):
    """The canonical Reference `reference` names, or ValueError saying why it is invalid.
    A canonical spelling parses to itself."""
    match = _REFERENCE.match(reference)
    if not match:
        raise ValueError(f"invalid image reference {reference!r}")
    domain, path = match["domain"], match["path"]
    if domain and not _is_domain(domain):
        # Docker reads a first component without '.' or ':' as part of the path.
        domain, path = None, f"{domain}/{path}"
    domain = domain or DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    if len(f"{domain}/{path}") > _MAX_NAME:
        raise ValueError(f"image name longer than {_MAX_NAME} characters")
    tag = match["tag"] or (None if match["digest"] else "latest")
    return Reference(domain, path, tag, match["digest"])


def _is_domain(component):
    return "." in component or ":" in component or component == "localhost"


def is_registry(host):
    """True if `host` is a registry's host[:port] as a reference names it (lower case, no scheme, no path)."""
    return bool(re.fullmatch(_DOMAIN, host)) and _is_domain(host)


def namespace(entry):
    """The canonical DOMAIN/PATH of a namespace entry DOMAIN/PATH/* (DOMAIN defaults as in
    parse()), or ValueError saying why `entry` is not one."""
    if entry.endswith("/*") and is_registry(entry.removesuffix("/*")):
        raise ValueError(f"namespace {entry!r} is a registry's top level, which would admit every image in it")
    match = _NAMESPACE.match(entry)
    if not match:
        raise ValueError(f"invalid namespace {entry!r}: expected REGISTRY/PATH/*")
    domain, path = match["domain"], match["path"]
    if domain and not _is_domain(domain):
        domain, path = None, f"{domain}/{path}"
    name = f"{domain or DEFAULT_DOMAIN}/{path}"  # a namespace: no library/ for a one-component path
    if len(name) > _MAX_NAME:
        raise ValueError(f"namespace longer than {_MAX_NAME} characters")
    return name


def familiar(reference):
    """The short form people type of a canonical reference or namespace, which `parse` maps
    back: docker.io/library/busybox:latest -> busybox:latest."""
    rest = reference.removeprefix(f"{DEFAULT_DOMAIN}/")
    if rest == reference:
        return reference
    short = rest.removeprefix("library/")
    name = short.split(":")[0].split("@")[0]
    if short != rest and "/" not in name:
        return short
    first = rest.split("/")[0]
    if "." in first or ":" in first or first == "localhost":
        return reference  # the short form would read as a registry
    return rest
