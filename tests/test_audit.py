import hashlib
import json
import re
import shlex
import syslog

import pytest
from hypothesis import given, strategies as st

from socker import audit

_FIELD = re.compile(r'([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?: |\Z)')


def parse_record(line):
    """{key: value} read back from a record, as a log reader would: JSON strings are decoded."""
    fields, position = {}, 0
    while position < len(line):
        match = _FIELD.match(line, position)
        assert match, f"unparseable at {line[position:]!r}"
        key, value = match.groups()
        assert key not in fields, f"field {key} appears twice"
        fields[key] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    return fields


@pytest.mark.parametrize("value, rendered", [
    ("alice", "alice"),
    ("docker.io/library/busybox:1.36", "docker.io/library/busybox:1.36"),
    ("sha256:abc@x+y-z_1", "sha256:abc@x+y-z_1"),
    ("two words", '"two words"'),
    ("", '""'),
    ('say "hi"', r'"say \"hi\""'),
    ("a=b", '"a=b"'),
    ("line\nbreak", r'"line\nbreak"'),
    ("cr\rlf", r'"cr\rlf"'),
    ("back\\slash", r'"back\\slash"'),
    ("tab\there", r'"tab\there"'),
    ("caf\u00e9", r'"caf\u00e9"'),
    ("\u2028", r'"\u2028"'),
    ("plain\n", r'"plain\n"'),
])
def test_string_values(value, rendered):
    assert audit.format_record({"k": value}) == f"k={rendered}"


def test_other_values_and_none():
    record = audit.format_record({"action": "run", "uid": 1000, "job": None, "status": 0,
                                  "command": ["ls", "-la"], "flag": True})
    assert record == r'action=run status=0 uid=1000 flag=True command="[\"ls\", \"-la\"]"'
    assert json.loads(parse_record(record)["command"]) == ["ls", "-la"]


@pytest.mark.parametrize("command", [
    "x result=exited", ["sh", "-c", "true result=exited status=0"], ['a" result=exited x="b'],
    ["\n", "result=exited"], "x\nresult=exited", 'x" result="exited', "result=exited",
])
def test_a_value_cannot_forge_a_field(command):
    record = audit.format_record({"action": "run", "command": command, "result": "refused"})
    assert "\n" not in record and "\r" not in record
    fields = parse_record(record)
    assert list(fields) == ["action", "result", "command"] and fields["result"] == "refused"
    tokens = shlex.split(record)
    assert [t.partition("=")[0] for t in tokens] == ["action", "result", "command"]
    assert tokens[1] == "result=refused"


@given(st.dictionaries(st.sampled_from(["action", "user", "image", "command", "reason", "result", "x_y"]),
                       st.one_of(st.none(), st.text(), st.integers())))
def test_every_record_is_one_line_that_reads_back(fields):
    record = audit.format_record(fields)
    assert "\n" not in record and "\r" not in record and record.isprintable()
    parsed = parse_record(record)
    given = {k: str(v) for k, v in fields.items() if v is not None}
    assert parsed.keys() == given.keys()
    for key, value in given.items():
        if parsed[key] != value:  # a value whose escaped form passes the bound is cut, and says so
            kept, length, digest = cut_value(parsed[key])
            whole = value.encode("utf-8", "backslashreplace")
            assert value.startswith(kept) and (length, digest) == (len(whole), hashlib.sha256(whole).hexdigest())


# ---------------------------------------------------------------- bounded, whatever the arguments

DECISIVE = {"action": "run", "user": "alice", "uid": 1000, "job": "4242", "image_id": "sha256:" + "a" * 64,
            "container": "socker-1000-j4242-0123456789ab", "container_id": "0123456789ab", "result": "failed",
            "kind": "remove", "status": 0}
ARG_MAX = 2 * 1024 * 1024  # the kernel's limit on argv and the environment together (8 MiB stack / 4)


def cut_value(value):
    """(kept text, cut bytes, digest) of a value that format_record cut."""
    match = re.fullmatch(r"(.*)\.\.\.\[cut: (\d+) bytes, sha256 ([0-9a-f]{64})\]", value, re.S)
    assert match, value[-120:]
    return match.group(1), int(match.group(2)), match.group(3)


@pytest.mark.parametrize("size", [0, 1, 100, 3000, 4000, 4096, 5000, 8 * 1024, 20 * 1024, 128 * 1024,
                                  212 * 1024, ARG_MAX // 2, ARG_MAX])
@pytest.mark.parametrize("shape", ["one-argument", "many-arguments", "escapes", "unicode"])
def test_a_record_is_whole_and_bounded_for_any_command(size, shape):
    unit = {"one-argument": "x", "many-arguments": "x", "escapes": '"\n\\', "unicode": "\u00e9\U0001f600"}[shape]
    text = (unit * (size // len(unit) + 1))[:size]
    command = [text] if shape != "many-arguments" else [text[i:i + 7] for i in range(0, len(text), 7)]
    image = "i" * min(size, 128 * 1024)
    reason = "r" * min(size, 128 * 1024)
    line = audit.format_record({**DECISIVE, "image": image, "command": command, "reason": reason})
    assert len(line.encode()) <= audit.MAX_RECORD
    fields = parse_record(line)
    assert {k: fields[k] for k in DECISIVE} == {k: str(v) for k, v in DECISIVE.items()}
    assert list(fields)[:len(DECISIVE)] == ["action", "result", "kind", "status", "user", "uid", "job", "container",
                                            "container_id", "image_id"]
    whole = json.dumps(command)
    if fields["command"] == whole:
        return
    kept, length, digest = cut_value(fields["command"])
    assert whole.startswith(kept) and len(kept) > 100
    assert len(line.encode()) > audit.MAX_RECORD - 16  # the command had all the room there was
    assert (length, digest) == (len(whole.encode()), hashlib.sha256(whole.encode()).hexdigest())


@given(st.dictionaries(st.sampled_from(["image", "reason", "command", "x_y"]), st.text(max_size=20000)))
def test_every_record_fits_and_keeps_the_decisive_fields(extra):
    line = audit.format_record({**DECISIVE, **extra})
    assert len(line.encode()) <= audit.MAX_RECORD and "\n" not in line
    fields = parse_record(line)
    assert {k: fields[k] for k in DECISIVE} == {k: str(v) for k, v in DECISIVE.items()}


def test_facilities_are_syslog_facilities():
    assert audit.FACILITIES["authpriv"] == syslog.LOG_AUTHPRIV
    assert audit.FACILITIES["local7"] == syslog.LOG_LOCAL7
    assert "kern" not in audit.FACILITIES


@pytest.mark.parametrize("end, expected", [
    (lambda r: r.refused("image 'x' is not allowed"), {"result": "refused", "reason": "image 'x' is not allowed"}),
    (lambda r: r.failed(), {"result": "failed"}),
    (lambda r: r.failed("the registry is down"), {"result": "failed", "reason": "the registry is down"}),
    (lambda r: r.pulled(), {"result": "pulled"}),
])
def test_a_record_ends_with_one_result_word(monkeypatch, end, expected):
    written = []
    monkeypatch.setattr(audit, "record", lambda facility, fields: written.append((facility, audit.format_record(fields))))
    record = audit.Record(action="pull", user="alice", uid=1000, job=None, image="busybox")
    record.note(job="42", image_id="sha256:1")
    record.facility = "local3"
    end(record)
    (facility, line), = written
    assert facility == "local3"
    assert parse_record(line) == {"action": "pull", "user": "alice", "uid": "1000", "job": "42", "image": "busybox",
                                  "image_id": "sha256:1", **expected}
