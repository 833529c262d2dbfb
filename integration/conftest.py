"""Fixtures of the integration tests (what the tests call lives in helpers.py).

The session installs the test configuration and puts the site's back afterwards; after each
test no container and no state socker made may remain.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ALICE, CONFIG, SOCKER, STATE_DIR, TEST_CONFIG, socker_containers, wait_until, write_config


@pytest.fixture(scope="session", autouse=True)
def installed():
    st = os.stat(SOCKER)
    assert st.st_uid == 0 and st.st_mode & 0o4000, f"{SOCKER} is not installed setuid root"
    assert subprocess.run(["docker", "info"], capture_output=True).returncode == 0, "no Docker engine"
    saved = CONFIG.read_bytes() if CONFIG.exists() else None
    write_config(TEST_CONFIG)
    yield
    if saved is None:
        CONFIG.unlink()
    else:
        CONFIG.write_bytes(saved)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Every test ends with no container of socker's and no state directory left."""
    assert not socker_containers(), "a container was left by an earlier test"
    yield
    assert wait_until(lambda: not socker_containers(), timeout=15), "socker left a container behind"
    assert wait_until(lambda: not any(STATE_DIR.glob("socker-*")), timeout=15), "socker left state behind"


@pytest.fixture
def site_config():
    """Replace the test config for one test; the session's config is restored afterwards."""
    yield write_config
    write_config(TEST_CONFIG)
    os.chmod(CONFIG.parent, 0o755)
    os.chown(CONFIG.parent, 0, 0)


@pytest.fixture
def alice_scratch():
    """socker-alice's scratch directory, emptied before and after the test."""
    path = Path("/scratch") / ALICE
    _empty(path)
    yield path
    _empty(path)


def _empty(path):
    for child in path.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
