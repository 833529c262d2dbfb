"""Configuration of the unit tests (what the tests share lives in helpers.py).

Tests marked `root` make files owned by root or by others and check socker's trust in
them: they run only as root (as CI and `make unit` on the test machine do). Run as
another user they are skipped, each with the reason, and a warning ends the report.
"""

import os
import signal

import pytest
from hypothesis import settings

from socker.host import securefile, statedir

settings.register_profile("unit", deadline=None, max_examples=150)
settings.load_profile("unit")

NEEDS_ROOT = "needs root: it makes files owned by root or by other users (run the unit tests as root)"


def pytest_configure(config):
    config.addinivalue_line("markers", f"root: {NEEDS_ROOT}")
    # --basetemp=/run/socker-unit-tests/pytest (make unit): pytest creates only the last component. It must sit
    # below root-owned 0755 directories for securefile.read_trusted to accept files there.
    if config.option.basetemp:
        parent = os.path.dirname(os.path.abspath(config.option.basetemp))
        os.makedirs(parent, mode=0o755, exist_ok=True)
        problems = securefile.path_problems(parent, "directory")
        if problems:
            raise pytest.UsageError(f"--basetemp must lie below root-owned directories that only root may "
                                    f"write (make unit uses one under /run): {problems[0]}")


def pytest_runtest_setup(item):
    if item.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip(NEEDS_ROOT)


def pytest_terminal_summary(terminalreporter):
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if NEEDS_ROOT in str(report.longrepr)]
    if skipped:
        terminalreporter.write_line(f"WARNING: {len(skipped)} tests that need root were skipped: "
                                    f"socker's checks of file ownership went untested", yellow=True, bold=True)


@pytest.fixture
def state_dir(tmp_path, monkeypatch):
    """socker's state directory (/run/socker), in a test's own temporary directory."""
    directory = tmp_path / "run-socker"
    monkeypatch.setattr(statedir, "STATE_DIR", str(directory))
    old_umask = os.umask(0o022)  # as Privileges.harden leaves it
    yield directory
    os.umask(old_umask)


@pytest.fixture
def signals_restored():
    """A run ends with the caller's signals held (session.hold_signals), in the test's own process:
    afterwards what is pending is dropped and the mask is as it was."""
    from socker.run import session
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, set())
    yield
    handlers = {sig: signal.signal(sig, signal.SIG_IGN) for sig in session.FORWARDED_SIGNALS}
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
