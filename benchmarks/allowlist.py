"""What socker allows the benchmark, as `socker images` says it, and the entries the benchmark adds.

Text alone, no node: the benchmark reads the listing and swaps the config (liveconfig.replaced).
Added entries go at the top of their block-style list, each marked as the benchmark's; a config
that lists no registries gets a `registries:` list at its end.
"""

import re

MARK = b"   # added by benchmarks/run, removed after"


def statuses(listing):
    """{image: present, pullable or absent} from the output of `socker images` (namespaces as NAME/*)."""
    found = {}
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 2:
            found[fields[0]] = fields[1]
    return found


def with_entries(text, images, registry=None):
    """The config `text` (bytes) allowing `images` too and, if `registry` = (host, credentials file)
    is given and the config does not list that host yet, listing it. ValueError if it cannot say where."""
    if images:
        text = _prepended(text, "images", [b"  - " + image.encode() + MARK + b"\n" for image in images])
    if registry and not _lists_registry(text, registry[0]):
        host, credentials = registry
        if not re.search(rb"^registries:", text, re.M):
            text = text + (b"" if text.endswith(b"\n") else b"\n") + b"registries:\n"
        text = _prepended(text, "registries", [f"  - host: {host}".encode() + MARK + b"\n",
                                               f"    credentials: {credentials}\n".encode()])
    return text


def _prepended(text, key, lines):
    match = re.search(rb"^" + key.encode() + rb":[ \t]*(#.*)?\n", text, re.M)
    if match is None:
        raise ValueError(f"no block-style '{key}:' list to add to")
    return text[:match.end()] + b"".join(lines) + text[match.end():]


def _lists_registry(text, host):
    return re.search(rb"^[ \t]*(- )?[ \t]*host:[ \t]*" + re.escape(host.encode()) + rb"[ \t]*(#.*)?$",
                     text, re.M) is not None
