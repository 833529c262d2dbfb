"""The RPM from `make rpm`, installed into a scratch root: setuid binary, config, epilog, docs."""

import glob
import os
import stat
import subprocess
from pathlib import Path

import pytest

RPMS = glob.glob("build/rpm/RPMS/*/socker-*.rpm")


@pytest.fixture(scope="module")
def rpm_root(tmp_path_factory):
    assert len(RPMS) == 1, "make rpm must have built exactly one package"
    root = tmp_path_factory.mktemp("rpmroot")
    subprocess.run(["rpm", "--root", str(root), "--initdb"], check=True)
    subprocess.run(["rpm", "--root", str(root), "-i", "--nodeps", "--noscripts", os.path.abspath(RPMS[0])],
                   check=True, capture_output=True)
    return root


def test_binary_is_setuid_root(rpm_root):
    st = os.lstat(rpm_root / "usr/local/lib/socker/socker")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o4755)
    assert os.readlink(rpm_root / "usr/local/bin/socker") == "/usr/local/lib/socker/socker"


def test_nothing_else_is_setuid_or_writable_by_others(rpm_root):
    for path in (rpm_root / "usr/local/lib/socker").rglob("*"):
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            continue
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
        assert not st.st_mode & 0o6000 or path.name == "socker" and path.parent.name == "socker", path


def test_config_is_noreplace_and_root_only(rpm_root):
    st = os.lstat(rpm_root / "etc/socker/socker.yaml")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o644)
    flags = subprocess.run(["rpm", "-qp", "--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\\n]", RPMS[0]],
                           capture_output=True, text=True, check=True).stdout
    assert "cn /etc/socker/socker.yaml" in flags.splitlines()


def test_epilog_man_page_and_completion(rpm_root):
    epilog = os.lstat(rpm_root / "etc/slurm/socker-epilog")
    assert stat.S_IMODE(epilog.st_mode) == 0o755 and epilog.st_uid == 0
    assert (rpm_root / "usr/local/share/man/man1/socker.1").read_text().startswith(".TH SOCKER 1")
    assert "complete -F _socker socker" in (rpm_root / "usr/share/bash-completion/completions/socker").read_text()


def test_installed_binary_matches_the_build(rpm_root):
    built = Path("build/dist/socker/socker").read_bytes()
    assert (rpm_root / "usr/local/lib/socker/socker").read_bytes() == built
