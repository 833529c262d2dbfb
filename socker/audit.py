"""One syslog record per `socker run`: who ran what, where, and how it ended.

Records are `key=value` pairs; values that are not plain words are JSON
strings, so a command or image name can never forge another field.
"""

import json
import re
import syslog

_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+-]+\Z")
FACILITIES = {name: getattr(syslog, f"LOG_{name.upper()}") for name in (
    "auth", "authpriv", "daemon", "user", "local0", "local1", "local2",
    "local3", "local4", "local5", "local6", "local7")}


def format_record(fields):
    """Render `fields` (in order, None values left out) as one line."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        if not isinstance(value, str):
            value = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{key}={value if _PLAIN.match(value) else json.dumps(value)}")
    return " ".join(parts)


def record(facility, fields):
    """Send one record to syslog at `facility` (a name from the config)."""
    syslog.openlog("socker", syslog.LOG_PID, FACILITIES[facility])
    syslog.syslog(syslog.LOG_INFO, format_record(fields))
    syslog.closelog()


class Record:
    """The audit trail of one run: fields gathered as the run goes, ended by one result word.

    The result words are `refused` (with `reason`), `exited` (with `status`), `failed` (socker or
    the engine failed) and `killed` (socker was gone and its guardian removed the container).
    Each writes the record to syslog at `facility`, which the configuration may change.
    """

    def __init__(self, **fields):
        self.facility = "authpriv"
        self.fields = dict(fields)

    def note(self, **fields):
        self.fields.update(fields)

    def refused(self, reason):
        self._write("refused", reason=reason)

    def exited(self, status):
        self._write("exited", status=status)

    def failed(self, reason=None):
        self._write("failed", reason=reason)

    def killed(self):
        self._write("killed")

    def _write(self, result, **fields):
        record(self.facility, {**self.fields, "result": result, **fields})
