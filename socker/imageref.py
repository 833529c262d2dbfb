"""Strict parsing of image references, so that allow-list matching is exact.

Only the grammar Docker itself accepts is accepted, with lower-case names and
sha256 digests. Both the administrator's entries and the caller's request are
reduced to one canonical spelling (docker.io/library/NAME:latest for a bare
NAME) and compared as strings: no patterns, no prefix matching.
"""

import re

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]+)?"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?"
    rf"(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?\Z"
)
_MAX_NAME = 255
DEFAULT_DOMAIN = "docker.io"


def canonical(reference):
    """Return the canonical spelling of `reference`, or raise ValueError saying why it is invalid."""
    match = _REFERENCE.match(reference)
    if not match:
        raise ValueError(f"invalid image reference {reference!r}")
    domain, path = match["domain"], match["path"]
    if domain and not ("." in domain or ":" in domain or domain == "localhost"):
        # Docker reads a first component without '.' or ':' as part of the path.
        domain, path = None, f"{domain}/{path}"
    domain = domain or DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"library/{path}"
    name = f"{domain}/{path}"
    if len(name) > _MAX_NAME:
        raise ValueError(f"image name longer than {_MAX_NAME} characters")
    tag = match["tag"] or (None if match["digest"] else "latest")
    return name + (f":{tag}" if tag else "") + (f"@{match['digest']}" if match["digest"] else "")


def familiar(reference):
    """The short form people type, which canonical() maps back: docker.io/library/busybox:latest -> busybox:latest."""
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
