"""main()'s exit status for each way a run can end: the one place errors become statuses."""

import os
import subprocess
import sys
import types

import pytest

import socker.__main__ as entry
from socker import commands, environ
from socker.host import privileges
from socker.errors import ConfigError, EngineError, PolicyError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def dispatching(monkeypatch):
    """main() up to the command, without hardening or emptying this test process's environment."""
    monkeypatch.setattr(privileges.Privileges, "harden", lambda self: None)
    monkeypatch.setattr(environ, "take_environment", lambda: types.MappingProxyType({}))

    def returning(outcome):
        def dispatch(action, context):
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome
        monkeypatch.setattr(commands, "dispatch", dispatch)
    return returning


@pytest.mark.parametrize("outcome, status, message", [
    (0, 0, ""),
    (42, 42, ""),  # the container's own status
    (PolicyError("image 'x' is not allowed"), 125, "socker: image 'x' is not allowed\n"),
    (ConfigError("/etc/socker/socker.yaml: not found"), 125, "socker: /etc/socker/socker.yaml: not found\n"),
    (EngineError("create container: no space\nforged line"), 125, "socker: create container: no space\\nforged line\n"),
    (PermissionError(13, "Permission denied"), 125, "socker: [Errno 13] Permission denied\n"),
    (KeyboardInterrupt(), 130, ""),
    (BrokenPipeError(32, "Broken pipe"), 141, ""),
])
def test_each_outcome_has_its_status_and_at_most_one_line(dispatching, capsys, outcome, status, message):
    dispatching(outcome)
    assert entry.main(["images"]) == status
    assert capsys.readouterr().err == message


def test_a_usage_error_is_125_before_any_command_runs(dispatching, capsys):
    dispatching(AssertionError("dispatch must not run"))
    assert entry.main(["run", "--privileged", "busybox"]) == 125
    assert capsys.readouterr().err == "socker: unknown option '--privileged' for 'socker run'; see 'socker run --help'\n"


def test_help_is_0_and_runs_no_command(dispatching, capsys):
    dispatching(AssertionError("dispatch must not run"))
    assert entry.main(["--help"]) == 0
    assert capsys.readouterr().out.startswith("Usage: socker")


def test_a_setuid_binary_whose_interpreter_reads_the_environment_refuses(dispatching, capsys, monkeypatch):
    dispatching(AssertionError("dispatch must not run"))
    monkeypatch.setattr(privileges.Privileges, "setuid", True, raising=False)
    monkeypatch.setattr(privileges.Privileges, "__init__", lambda self, identity: None)
    assert entry.main(["images"]) == 125
    assert "must not be installed setuid" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_a_reader_that_has_gone_gives_141_and_nothing_on_stderr(args):
    """`socker --help | true`: the pipe's reader is gone before socker writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "socker", *args], cwd=REPO, stdout=write_end,
                                stderr=subprocess.PIPE, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, b"")


def test_the_exit_statuses_are_documented_alike():
    """--help, the README and socker(1) name the same statuses, and main() returns each of them."""
    import re
    from socker import cli
    with open(os.path.join(REPO, "README.md")) as f:
        readme = f.read().split("### Exit status", 1)[1].split("\n## ", 1)[0]
    with open(os.path.join(REPO, "packaging", "socker.1")) as f:
        manual = f.read().split(".SH EXIT STATUS", 1)[1].split(".SH ", 1)[0]
    in_help = set(re.findall(r"\b(1|12[5-7]|130|141)\b", cli.USAGE.split("Exit status:", 1)[1]))
    in_readme = set(re.findall(r"^\| (\d+) \|", readme, re.M))
    in_manual = set(re.findall(r"^\.B (\d+)$", manual, re.M))
    returned = {str(entry.EXIT_SOCKER_FAILED), str(entry.EXIT_INTERRUPTED), str(entry.EXIT_READER_LEFT)}
    assert in_help == in_readme == in_manual == returned | {"1", "126", "127"}
