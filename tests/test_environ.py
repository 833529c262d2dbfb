import ctypes
import os

import pytest

from socker import environ

HOSTILE = {
    "LD_PRELOAD": "/nonexistent/evil.so", "LD_LIBRARY_PATH": "/tmp", "PYTHONPATH": "/tmp/evil",
    "PYTHONHOME": "/tmp", "PYTHONSTARTUP": "/tmp/x.py", "DOCKER_HOST": "tcp://evil:2375", "DOCKER_TLS_VERIFY": "",
    "DOCKER_CERT_PATH": "/tmp", "DOCKER_CONFIG": "/tmp", "HTTP_PROXY": "http://evil:3128",
    "https_proxy": "http://evil:3128", "NO_PROXY": "*", "REQUESTS_CA_BUNDLE": "/tmp/ca.pem", "HOME": "/home/alice",
    "PATH": "/tmp/evil:/usr/bin", "IFS": " x", "TMPDIR": "/tmp/evil", "LANG": "xx_XX", "SLURM_JOB_ID": "4242",
    "NETRC": "/tmp/netrc", "LC_ALL": "evil",
}
SANITISED = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent", "LC_ALL": "C.UTF-8"}


@pytest.fixture
def hostile_environment(monkeypatch):
    # Record every variable so that monkeypatch puts the whole environment back afterwards.
    for name in {*os.environ, *SANITISED, *HOSTILE}:
        monkeypatch.setenv(name, os.environ.get(name, ""))
    for name, value in HOSTILE.items():
        monkeypatch.setenv(name, value)


def test_only_safe_values_are_left(hostile_environment):
    environ.take_environment()
    assert dict(os.environ) == SANITISED


def test_the_process_environment_itself_is_cleared(hostile_environment):
    # os.environ.clear() must reach the C environment, which a child process or C library reads.
    environ.take_environment()
    getenv = ctypes.CDLL(None).getenv
    getenv.restype = ctypes.c_char_p
    assert getenv(b"LD_PRELOAD") is None and getenv(b"DOCKER_HOST") is None
    assert getenv(b"PATH") == b"/usr/sbin:/usr/bin:/sbin:/bin" and getenv(b"HOME") == b"/nonexistent"


def test_the_callers_values_are_returned_read_only(hostile_environment):
    before = dict(os.environ)
    caller = environ.take_environment()
    assert dict(caller) == before
    assert caller["DOCKER_HOST"] == "tcp://evil:2375" and caller["HOME"] == "/home/alice"
    with pytest.raises(TypeError):
        caller["PATH"] = "/x"  # type: ignore[index]
    os.environ["LATER"] = "1"
    assert "LATER" not in caller


def test_taking_it_twice_leaves_nothing_of_the_caller(hostile_environment):
    environ.take_environment()
    assert dict(environ.take_environment()) == SANITISED
