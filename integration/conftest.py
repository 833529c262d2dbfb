"""Fixtures of the integration tests (what the tests call lives in helpers.py).

The session installs the test configuration and puts the site's back afterwards; after each
test no container and no state socker made may remain.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import cgroup_layout
import siteregistry
from helpers import ALICE, CONFIG, SOCKER, STATE_DIR, TEST_CONFIG, socker_containers, unique, wait_until, write_config


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
    assert wait_until(lambda: not any(STATE_DIR.glob("*socker-*")), timeout=15), "socker left state behind"


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


@pytest.fixture(scope="session")
def cgroups():
    """The cgroup layout in force (v1 on the host, v2 in the integration/vm guest), which Slurm must use too."""
    layout = cgroup_layout.in_force()
    plugin = [line.split("=", 1)[1].strip() for line in Path("/etc/slurm/cgroup.conf").read_text().splitlines()
              if line.startswith("CgroupPlugin=")]
    assert plugin == [f"cgroup/v{layout.version}"], f"cgroup v{layout.version}, but Slurm's cgroup.conf says {plugin}"
    return layout


# ------------------------------------------------------------------ the site registry

@pytest.fixture
def credentials():
    """The pull account's credentials file, as an administrator installs it."""
    path = siteregistry.CREDENTIALS
    siteregistry.write_credentials(path)
    yield path
    path.unlink(missing_ok=True)


@pytest.fixture
def allow(site_config, credentials):
    """allow(*images, hosts=...): socker's config lists the registries `hosts` (the harness's by
    default) with the pull account's credentials, and allows exactly `images`."""
    def write(*images, hosts=(siteregistry.HOST,)):
        site_config(siteregistry.socker_config(images, [(host, {"credentials": credentials}) for host in hosts]))
    return write


@pytest.fixture
def published():
    """published(name=None, **siteregistry.publish's options): a new image in the registry, which no
    engine has; gone from the registry and the engine after the test."""
    made = []

    def make(name=None, **options):
        image = siteregistry.publish(name or f"t-{unique()}", **options)
        made.append(image)
        return image
    yield make
    for image in made:
        siteregistry.remove_from_engine(image.reference)
        siteregistry.remove_from_engine(image.reference.replace(siteregistry.HOST, siteregistry.SLOW_HOST))
        siteregistry.forget(image.pinned)
