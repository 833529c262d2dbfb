"""What the puller tells its socker: never waiting long for a reader that reads nothing."""

import fcntl
import json
import os

import pytest

from socker import puller

_F_SETPIPE_SZ = 1031


@pytest.fixture
def small_pipe():
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, _F_SETPIPE_SZ, 4096)
    yield read_fd, write_fd
    os.close(read_fd)
    os.close(write_fd)


def lines(fd):
    os.set_blocking(fd, False)
    try:
        return [json.loads(line) for line in os.read(fd, 1 << 20).splitlines()]
    except BlockingIOError:
        return []


def test_progress_the_pipe_has_no_room_for_is_dropped_whole(small_pipe):
    read_fd, write_fd = small_pipe
    reports = puller._Reports(write_fd)
    for n in range(1000):  # returns at once, though no one reads
        reports.progress({"progress": {"n": n, "padding": "x" * 100}})
    said = lines(read_fd)
    assert 0 < len(said) < 1000 and [report["progress"]["n"] for report in said] == list(range(len(said)))


def test_the_last_word_waits_a_while_for_room(small_pipe, monkeypatch):
    read_fd, write_fd = small_pipe
    monkeypatch.setattr(puller, "_LAST_WORD_PATIENCE", 0.2)
    reports = puller._Reports(write_fd)
    for n in range(100):
        reports.progress({"progress": {"n": n, "padding": "x" * 100}})
    reports.last({"failed": "lost: the pipe stayed full"})
    assert lines(read_fd)[-1] != {"failed": "lost: the pipe stayed full"}
    reports.last({"pulled": "sha256:" + "ab" * 32})  # room now
    assert lines(read_fd) == [{"pulled": "sha256:" + "ab" * 32}]


def test_a_report_too_long_to_go_whole_is_not_sent_at_all(small_pipe):
    read_fd, write_fd = small_pipe
    puller._Reports(write_fd).progress({"progress": {"status": "x" * 5000}})
    assert lines(read_fd) == []
