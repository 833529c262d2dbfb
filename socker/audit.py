"""The audit trail of `socker run` and of pulls in syslog: who ran or pulled what, where, and how it ended.

Records are `key=value` pairs; values that are not plain words are JSON
strings, so a command or image name can never forge another field.
"""

import hashlib
import json
import re
import syslog

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+-]+\Z")
FACILITIES = {name: getattr(syslog, f"LOG_{name.upper()}") for name in (
    "auth", "authpriv", "daemon", "user", "local0", "local1", "local2",
    "local3", "local4", "local5", "local6", "local7")}
# A record must reach the log whole, whatever the caller's arguments: a syslog daemon cuts a
# message at its size limit (rsyslog's default: 8 KiB with the header) and a datagram past the
# socket's limit is dropped. So a record is at most this long, its decisive fields come first,
# and the values the caller makes as long as they like come last, each cut to its share.
MAX_RECORD = 4096
_FIRST = ("action", "result", "kind", "status", "user", "uid", "job", "container", "container_id", "image_id", "left")
_CALLERS = ("reason", "image", "command")  # last, in this order; the command gets what is left
_MAX_VALUE = 512


def format_record(fields):
    """Render `fields` (None values left out) as one line of at most MAX_RECORD bytes."""
    present = {key: _text(value) for key, value in fields.items() if value is not None}
    order = sorted(present, key=lambda key: (_FIRST.index(key) if key in _FIRST else len(_FIRST),
                                             _CALLERS.index(key) if key in _CALLERS else -1))
    parts = [_field(key, present[key], _MAX_VALUE) for key in order if key != "command"]
    if "command" in present:
        room = MAX_RECORD - len(" ".join(parts)) - len(" command=")
        parts.append(_field("command", present["command"], room))
    return " ".join(parts)


def _text(value):
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def _field(key, value, room):
    """key=value, with value quoted if it is not a plain word and cut to at most `room` bytes."""
    rendered = _rendered(value)
    if len(rendered) <= room:
        return f"{key}={rendered}"
    whole = value.encode("utf-8", "backslashreplace")
    marker = f"...[cut: {len(whole)} bytes, sha256 {hashlib.sha256(whole).hexdigest()}]"
    low, high = 0, min(len(value), room)  # the longest prefix that fits: each character takes a byte or more
    while low < high:
        middle = (low + high + 1) // 2
        if len(_rendered(value[:middle] + marker)) <= room:
            low = middle
        else:
            high = middle - 1
    return f"{key}={_rendered(value[:low] + marker)}"


def _rendered(value):
    return value if _PLAIN.match(value) else json.dumps(value)


def record(facility, fields):
    """Send one record to syslog at `facility` (a name from the config)."""
    syslog.openlog("socker", syslog.LOG_PID, FACILITIES[facility])
    syslog.syslog(syslog.LOG_INFO, format_record(fields))
    syslog.closelog()


class Record:
    """The audit trail of one request: fields gathered as it goes, each record one result word.

    A pull's ends with `pulled` (the image came from its registry) or `failed`; refused
    arguments and pulls with `refused`. A run's results are chosen in `run.lifecycle`. Each
    writes the record to syslog at `facility`, which the configuration may change.
    """

    def __init__(self, **fields):
        self.facility = "authpriv"
        self.fields = dict(fields)

    def note(self, **fields):
        self.fields.update(fields)

    def refused(self, reason):
        self.write("refused", reason=reason)

    def failed(self, reason=None):
        self.write("failed", reason=reason)

    def pulled(self):
        self.write("pulled")

    def write(self, result, **fields):
        record(self.facility, {**self.fields, "result": result, **fields})
