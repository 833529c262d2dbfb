"""Nothing socker makes on the host outlives the run: not when descriptors run out, not with many
volumes, not when socker and its guardian are both killed (then the administrator's sweep removes it).

Staged bind mounts live in the host's mount namespace, below /run/socker: a run that left them
would, repeated, exhaust fs.mount-max for the whole node.
"""

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import ALICE, BOB, IMAGE, SOCKER, STATE_DIR, docker, popen_socker, refused, run_as, socker, \
    socker_containers, user, wait_until

MAX_VOLUMES = 64  # README, "socker run": the documented cap on -v


def staged_mounts():
    """Mount points below socker's state directory, in the host's (pid 1's) mount namespace."""
    with open("/proc/1/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(f"{STATE_DIR}/")]


def state_left():
    """Run state directories, named or not yet named (statedir.UNNAMED)."""
    return sorted(p.name for p in STATE_DIR.iterdir() if p.name.startswith(("socker-", ".new-socker-")))


@pytest.fixture
def leak_dir():
    path = Path(user(ALICE).pw_dir) / "leak"
    path.mkdir(exist_ok=True)
    os.chown(path, user(ALICE).pw_uid, user(ALICE).pw_gid)
    assert not staged_mounts() and not state_left(), "an earlier run left state behind"
    yield path
    assert not staged_mounts(), "staged mounts were left in the host's mount namespace"
    assert not state_left(), "a state directory was left"


def run_with_descriptor_limit(limit, volumes, which="-n"):
    """socker run with `volumes` bind mounts, under `ulimit WHICH LIMIT` (-n: soft and hard; -Sn: soft)."""
    args = [arg for i in range(volumes) for arg in ("-v", f"{user(ALICE).pw_dir}/leak:/m{i}:ro")]
    command = f'ulimit {which} {limit} && exec "$@"'
    return run_as(ALICE, ["bash", "-c", command, "bash", SOCKER, "run", *args, IMAGE, "true"], timeout=120)


def test_no_descriptor_limit_leaves_anything_behind(leak_dir):
    """Every limit from 3 to past the number of mounts: the run fails early or ends well, never half done."""
    volumes = 50
    for limit in range(3, volumes + 20):
        result = run_with_descriptor_limit(limit, volumes)
        assert result.returncode == 0 or result.stderr.count(b"\n") == 1, (limit, result)
        assert not staged_mounts(), (limit, result.stderr)
        assert not state_left(), (limit, result.stderr)
        assert not socker_containers(), limit


def test_the_callers_soft_descriptor_limit_does_not_decide_whether_socker_runs(leak_dir):
    """socker's own descriptors are socker's business: it takes what the hard limit allows."""
    result = run_with_descriptor_limit(16, volumes=MAX_VOLUMES, which="-Sn")
    assert (result.returncode, result.stderr) == (0, b"")


def test_more_volumes_than_the_cap_are_refused(leak_dir):
    args = [arg for i in range(MAX_VOLUMES + 1) for arg in ("-v", f"{leak_dir}:/m{i}:ro")]
    refused(socker(ALICE, "run", *args, IMAGE, "true"), f"at most {MAX_VOLUMES}")


def test_the_sweep_removes_what_a_killed_socker_and_guardian_left(leak_dir):
    run = popen_socker(ALICE, "run", "-v", f"{leak_dir}:/data:ro", IMAGE, "sleep", "600",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: socker_containers() and staged_mounts(), timeout=30)
    guardians = [pid for pid in map(int, subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True,
                                                        text=True).stdout.split())]
    assert guardians, "socker has no guardian"
    for pid in (*guardians, run.pid):  # as scancel's SIGKILL of the whole step would
        os.kill(pid, signal.SIGKILL)
    run.wait()
    assert socker_containers() and staged_mounts() and state_left()

    # The sweep is the administrator's: a user gets a refusal, and nothing is removed.
    left = (socker_containers(), staged_mounts(), state_left())
    result = socker(ALICE, "sweep")
    assert (result.returncode, result.stdout) == (125, b"")
    assert result.stderr == b"socker: 'socker sweep' is for root: it removes what dead runs of any user left\n"
    assert (socker_containers(), staged_mounts(), state_left()) == left

    result = subprocess.run([SOCKER, "sweep"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result
    assert "removed 1" in result.stdout
    assert not socker_containers() and not staged_mounts() and not state_left()


def test_the_sweep_leaves_a_live_run_alone(leak_dir):
    run = popen_socker(ALICE, "run", "-v", f"{leak_dir}:/data:ro", IMAGE, "sleep", "600",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: socker_containers() and staged_mounts(), timeout=30)
        live = (socker_containers(), staged_mounts(), state_left())
        result = subprocess.run([SOCKER, "sweep"], capture_output=True, text=True, timeout=120)
        nothing = "socker sweep: removed 0 stale run(s), 0 pull lock(s) no one held and 0 half-written pull record(s)\n"
        assert (result.returncode, result.stdout) == (0, nothing), result
        assert (socker_containers(), staged_mounts(), state_left()) == live
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(30)


def test_an_interrupt_while_the_engine_creates_the_container_leaves_no_container():
    # ^C while the create request is in flight: socker never learns the container's ID, and the
    # engine, asked to remove it by name, does not know it yet.
    uid = user(ALICE).pw_uid
    rounds = random.Random(7)
    for _ in range(40):
        proc = popen_socker(ALICE, "run", IMAGE, "true", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: proc.poll() is not None or any(STATE_DIR.glob(f"socker-{uid}-*")),
                   timeout=15, interval=0.001)
        time.sleep(rounds.uniform(0, 0.012))
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    assert wait_until(lambda: not socker_containers(), timeout=30), docker("ps", "-a")


def test_another_user_can_neither_list_nor_lock_a_runs_state():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo ready; sleep 60", stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        [state] = STATE_DIR.glob(f"socker-{user(ALICE).pw_uid}-*")
        assert run_as(BOB, ["ls", str(STATE_DIR)]).returncode != 0
        locked = run_as(BOB, ["flock", "-n", "-s", str(state), "true"])
        assert locked.returncode != 0 and b"Permission denied" in locked.stderr, locked
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
