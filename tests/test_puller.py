"""What the puller tells its socker: never waiting long for a reader that reads nothing."""

import fcntl
import json
import os

import pytest

from socker.registry import puller
from socker.config import Registry
from socker.errors import NotFound, Unauthorized, Unreachable, Untrusted

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


REGISTRY = Registry(host="registry.example.org:5443", credentials=None, ca=None, timeout=30)


@pytest.mark.parametrize("error, reason", [
    (Unreachable('Get "https://registry.example.org:5443/v2/": dial tcp 10.0.0.9:5443: connect: connection refused',
                 status=500),
     "cannot reach the registry registry.example.org:5443: connection refused"),
    (Untrusted('Get "https://registry.example.org:5443/v2/": x509: certificate signed by unknown authority'),
     "the engine does not trust the certificate of the registry registry.example.org:5443 (its CA belongs in "
     "/etc/docker/certs.d/registry.example.org:5443/ca.crt): certificate signed by unknown authority"),
    (NotFound("manifest unknown", status=404), "bio/bowtie:2.5 is not in the registry (no such image, tag or digest)"),
    (Unauthorized("unauthorized: authentication required", status=401),
     "the registry registry.example.org:5443 wants credentials, and none are configured for it"),
])
def test_the_reason_a_pull_failed_comes_from_the_errors_kind_and_detail(error, reason):
    assert puller._cause(error, REGISTRY, "bio/bowtie:2.5", None) == reason
