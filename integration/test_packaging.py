"""Installing socker: packaging/install on the live node while socker runs, and the RPM from
`make rpm` installed into a scratch root (setuid binary, config, epilog, docs)."""

import glob
import os
import shutil
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from helpers import ALICE, IMAGE, SOCKER, popen_socker, socker, wait_until

RPMS = glob.glob("build/rpm/RPMS/*/socker-*.rpm")
BUILT = Path("build/dist/socker")
LIB = Path("/usr/local/lib")
LIBLINK = LIB / "socker"


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


# ------------------------------------------------------------------ packaging/install on the live node

def install(dist=BUILT):
    result = subprocess.run(["packaging/install", "--dist", str(dist)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def runs_from(directory):
    """Whether a process runs a program that lies in `directory`."""
    for exe in Path("/proc").glob("[0-9]*/exe"):
        try:
            if os.readlink(exe).startswith(f"{directory}/"):
                return True
        except OSError:
            pass
    return False


def build_directory(dist):
    """The directory a dist is installed into: the one its binary's RPATH names."""
    rpath = subprocess.run(["patchelf", "--print-rpath", dist / "socker"], capture_output=True, text=True,
                           check=True).stdout.strip()
    return Path(rpath.split(":")[-1])


@pytest.fixture
def other_build(tmp_path):
    """A second build: build/dist's files, with a directory of its own in the binary's RPATH."""
    dist = tmp_path / "socker"
    shutil.copytree(BUILT, dist)
    directory = build_directory(BUILT).with_name(build_directory(BUILT).name + "-other")
    subprocess.run(["patchelf", "--force-rpath", "--set-rpath", f"$ORIGIN:{directory}", dist / "socker"], check=True)
    yield dist
    install()
    assert sorted(LIB.glob("socker-*")) == [build_directory(BUILT)], "an earlier build was left behind"


class Runs:
    """socker started as socker-alice, one run after another in each of a few threads, until stopped."""

    COMMANDS = (("run", IMAGE, "true"), ("--version",))

    def __init__(self):
        self.results, self.stop = [], threading.Event()
        self.threads = [threading.Thread(target=self._loop, args=(command,)) for command in self.COMMANDS]

    def _loop(self, command):
        while not self.stop.is_set():
            result = socker(ALICE, *command)
            self.results.append((command, result.returncode, result.stderr.decode(errors="replace")))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def failures(self):
        return [r for r in self.results if r[1] != 0]


class Watch:
    """Another process that looks for `path` as fast as it can until stopped: it sees a moment in
    which nothing stands there, where a socker starting then may miss it only now and then."""

    LOOP = ("import os, sys, threading\n"
            "stop = threading.Event()\n"
            "threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()\n"
            "looks = misses = 0\n"
            "while not stop.is_set():\n"
            "    looks += 1\n"
            "    misses += not os.path.exists(sys.argv[1])\n"
            "print(looks, misses)\n")

    def __init__(self, path):
        self.path = path
        self.looks = self.misses = None

    def __enter__(self):
        self._process = subprocess.Popen(["python3", "-c", self.LOOP, str(self.path)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *exc):
        out, _ = self._process.communicate("", timeout=60)
        self.looks, self.misses = map(int, out.split())


def test_no_run_fails_while_install_switches_builds(other_build):
    install()
    switches = [other_build, BUILT] * 3
    with Runs() as runs:
        for dist in switches:
            time.sleep(0.5)
            install(dist)
            assert os.path.realpath(LIBLINK) == str(build_directory(dist))
        time.sleep(0.5)
    assert runs.failures() == []
    assert len(runs.results) >= 2 * len(switches), "too few runs to have met the switches"
    result = socker(ALICE, "config", "check")
    assert (result.returncode, result.stdout.decode().strip()) == (0, "config check: ok")


def test_a_running_socker_keeps_its_build_until_it_ends(other_build):
    install()
    first = build_directory(BUILT)
    running = popen_socker(ALICE, "run", IMAGE, "sleep", "4")
    assert wait_until(lambda: runs_from(first), timeout=15)  # it runs from the first build before the switch
    install(other_build)
    # The earlier build stays while socker runs from it, but nobody can start it setuid any more.
    assert stat.S_IMODE(os.stat(first / "socker").st_mode) == 0o755
    assert running.wait(timeout=30) == 0
    assert wait_until(lambda: not runs_from(first), timeout=15)  # its guardian ends just after it
    install(other_build)
    assert not first.exists()


def test_the_layout_of_earlier_installs_is_switched_without_a_gap(other_build):
    """Earlier installs put the tree itself at PREFIX/lib/socker, where a symlink now stands."""
    install()
    os.unlink(LIBLINK)
    shutil.copytree(build_directory(BUILT), LIBLINK, symlinks=True)
    with Runs() as runs, Watch(LIBLINK / "socker") as watch:
        time.sleep(0.5)
        install(other_build)
        time.sleep(0.5)
    assert runs.failures() == []
    assert watch.looks > 1000 and watch.misses == 0, f"{watch.misses} of {watch.looks} looks found nothing"
    assert os.readlink(LIBLINK) == build_directory(other_build).name
    assert os.readlink(SOCKER) == str(LIBLINK / "socker")
