"""No user can hold up another's pull, and nothing a pull leaves piles up.

Whatever a user does to their own socker (stop it, let its pipes fill), to their job (freeze
it) or to their limits (ulimit), another user's pull of the same image goes on; whatever names
they pull, nothing is left in /run/socker/pulls; and a registry the engine would reach without
verified TLS never gets the pull account's credentials. Against the real registry, slowed by
the throttling proxy so that a pull can be caught in the middle, as socker-alice and socker-bob.
"""

import os
import re
import select
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, SOCKER, job_state, popen_socker, refused, run_as, sbatch, socker,
                     unique, wait_for_audit, wait_job, wait_until)
from siteregistry import (CREDENTIALS, NAMESPACE, NAMESPACE_ENTRY, PLAIN_HOST, PULL_RECORDS, SLOW_HOST, Throttle,
                          present, pull_records_naming, reference, socker_config)

LOCKS = Path("/run/socker/pulls")
_LOCK_LINE = re.compile(r"\b(?:FLOCK|POSIX|OFDLCK)\s+\S+\s+(?:READ|WRITE)\s+(?P<pid>\d+)\s")
# CAP_SYS_RESOURCE: without it in the bounding set, not even root may raise a hard limit.
_CAP_SYS_RESOURCE = 24


def on_slow_host(image_reference):
    return image_reference.replace(image_reference.split("/")[0], SLOW_HOST, 1)


def locks_held_by(pid):
    return [line for line in Path("/proc/locks").read_text().splitlines()
            if (m := _LOCK_LINE.search(line)) and int(m["pid"]) == pid]


def stop_at_its_first_lock_or_word(process):
    """SIGSTOP `process` the moment it holds a lock or has said something on stderr, whichever
    comes first: the moments an earlier socker held the node's lock itself."""
    poller = select.poll()
    poller.register(process.stderr, select.POLLIN)
    while not locks_held_by(process.pid) and not poller.poll(0):
        assert process.poll() is None, "socker ended before it could be stopped"
    os.kill(process.pid, signal.SIGSTOP)


def lock_files():
    return sorted(os.listdir(LOCKS)) if LOCKS.is_dir() else []


def root_sockers():
    """Processes of root's that run the socker binary: guardians and pullers."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            uids = next(line for line in status.read_text().splitlines() if line.startswith("Uid:")).split()[1:]
            exe = os.readlink(status.with_name("exe"))
        except (OSError, StopIteration):
            continue
        if uids[0] == "0" and exe.endswith("/socker") and "socker-" in exe:
            found.append(int(status.parent.name))
    return found


@pytest.fixture
def slow(allow, published):
    """slow(**published's options): an image the node lacks, named through the throttling proxy,
    which socker's configuration lists."""
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))

    def make(**options):
        return on_slow_host(published(**options).reference)
    return make


def bob_pulls(image_reference):
    """Bob's pull of the image ends well while alice does what she does."""
    result = socker(BOB, "pull", image_reference, timeout=120)
    assert result.returncode == 0, result.stderr
    assert present(image_reference)


def test_a_socker_stopped_when_it_starts_a_pull_holds_up_no_one(slow):
    image_reference = slow(payload_bytes=8 << 20)
    with Throttle(1 << 20):
        alice = popen_socker(ALICE, "pull", image_reference, stderr=subprocess.PIPE)
        stop_at_its_first_lock_or_word(alice)
        try:
            assert locks_held_by(alice.pid) == []
            bob_pulls(image_reference)
        finally:
            os.kill(alice.pid, signal.SIGCONT)
        _, err = alice.communicate(timeout=120)
    assert alice.returncode == 0, err
    assert lock_files() == []


def test_a_stopped_socker_whose_pipe_fills_holds_up_no_one(slow):
    # Each layer is some ten progress reports: far more than a pipe holds.
    image_reference = slow(layers=120)
    with Throttle(1 << 20):
        alice = popen_socker(ALICE, "pull", image_reference, stderr=subprocess.PIPE)
        assert alice.stderr.readline().decode() == f"socker: pulling {image_reference}\n"
        os.kill(alice.pid, signal.SIGSTOP)  # ^Z: it reads no more of its puller's reports
        try:
            bob_pulls(image_reference)
            assert wait_until(lambda: lock_files() == [], timeout=30)
        finally:
            os.kill(alice.pid, signal.SIGCONT)
        _, err = alice.communicate(timeout=120)
    assert alice.returncode == 0, err


def test_a_frozen_job_holds_up_no_one(slow, tmp_path):
    image_reference = slow(payload_bytes=16 << 20)
    output = Path("/home") / ALICE / f"pull-{unique()}.out"
    with Throttle(1 << 20):
        job = sbatch(ALICE, f"srun {SOCKER} pull {image_reference}", output=output)
        try:
            assert wait_until(lambda: output.exists() and "socker: pulling" in output.read_text(), timeout=60)
            stopped = run_as(ALICE, ["scancel", "-s", "STOP", job])
            assert stopped.returncode == 0, stopped.stderr
            bob_pulls(image_reference)
        finally:
            run_as(ALICE, ["scancel", job])
            wait_job(job)
            output.unlink(missing_ok=True)
    assert job_state(job) in ("CANCELLED", "COMPLETED"), job_state(job)
    assert wait_until(lambda: not root_sockers(), timeout=60), "a root socker outlived its job and its pull"
    assert lock_files() == []


# ------------------------------------------------------------------ the caller's limits

def root_may_raise_hard_limits():
    bounding = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd:"))
    return bool(int(bounding.split()[1], 16) >> _CAP_SYS_RESOURCE & 1)


def pulled_with_its_record(result, image_reference):
    assert result.returncode == 0, result.stderr
    assert present(image_reference)
    [record] = pull_records_naming(image_reference)
    assert '"digest": "sha256:' in record.read_text()
    assert any("result=pulled" in line for line in wait_for_audit(image_reference))


def half_written_records():
    return sorted(p.name for p in PULL_RECORDS.iterdir() if p.name.startswith("."))


def test_a_soft_file_size_limit_of_the_caller_does_not_reach_the_puller(allow, published):
    image = published()
    allow(NAMESPACE_ENTRY)
    before = half_written_records()
    result = run_as(ALICE, ["bash", "-c", f'ulimit -S -f 0 && exec {SOCKER} pull "$0"', image.reference])
    pulled_with_its_record(result, image.reference)
    assert half_written_records() == before


def test_a_hard_file_size_limit_either_is_lifted_or_refuses_the_pull_before_it_starts(allow, published):
    image = published()
    allow(NAMESPACE_ENTRY)
    before = half_written_records()
    result = run_as(ALICE, ["bash", "-c", f'ulimit -f 0 && exec {SOCKER} pull "$0"', image.reference])
    if root_may_raise_hard_limits():
        pulled_with_its_record(result, image.reference)
    else:
        refused(result, f"cannot pull {image.reference}: ", "File too large")
        assert not present(image.reference)
        assert pull_records_naming(image.reference) == []
        assert any("result=failed" in line and "File too large" in line for line in wait_for_audit(image.reference))
    assert half_written_records() == before
    assert lock_files() == []


# ------------------------------------------------------------------ what pulls leave

def test_failed_pulls_of_any_names_leave_no_files(allow):
    allow(NAMESPACE_ENTRY)
    before = lock_files()
    for _ in range(30):
        result = socker(ALICE, "pull", reference(f"absent-{unique()}", tag=unique()))
        assert result.returncode == 125, result.stderr
    assert lock_files() == before == []


# ------------------------------------------------------------------ registries without verified TLS

class Listener:
    """A local user's server on a loopback port: it keeps all it receives."""

    def __init__(self, address):
        self._server = socket.create_server(address)
        self.port = self._server.getsockname()[1]
        self.received = b""
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        try:
            while True:
                connection, _ = self._server.accept()
                with connection:  # what the first read brings, then closed: TLS fails, HTTP is refused
                    connection.settimeout(10)
                    self.received += connection.recv(65536)
        except OSError:
            return  # closed

    def close(self):
        self._server.close()
        self._thread.join(timeout=40)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", PLAIN_HOST])
def test_credentials_go_to_no_registry_the_engine_reaches_without_verified_tls(site_config, credentials, host):
    listener = Listener(("127.0.0.1", 0))
    registry = f"{host}:{listener.port}"
    image_reference = f"{registry}/{NAMESPACE}/x:{unique()}"
    try:
        site_config(socker_config([f"{registry}/{NAMESPACE}/*"], [(registry, {"credentials": CREDENTIALS})]))
        check = socker(ALICE, "config", "check")
        assert check.returncode == 1, check.stdout
        assert f"registry {registry}: the engine reaches it without verified TLS" in check.stdout.decode()
        result = socker(ALICE, "pull", image_reference)
        refused(result, registry, "without verified TLS")
    finally:
        listener.close()
    assert listener.received == b""
    assert not present(image_reference)


def test_a_registry_the_admin_calls_insecure_is_reached_without_credentials(site_config):
    listener = Listener(("127.0.0.1", 0))
    registry = f"localhost:{listener.port}"
    image_reference = f"{registry}/{NAMESPACE}/x:{unique()}"
    try:
        site_config(socker_config([f"{registry}/{NAMESPACE}/*"], [(registry, {"insecure": "true"})]))
        check = socker(ALICE, "config", "check")
        assert check.stdout.decode().splitlines()[-1] == "config check: ok", check.stdout
        result = socker(ALICE, "pull", image_reference, timeout=120)
        refused(result, f"cannot pull {image_reference}: ")
    finally:
        listener.close()
    assert b"GET /v2/" in listener.received, listener.received  # the engine asked, over plain HTTP
    assert b"authorization" not in listener.received.lower()


def test_an_insecure_registry_with_credentials_is_a_configuration_error(site_config, credentials):
    site_config(socker_config([f"localhost:5000/{NAMESPACE}/*"],
                              [("localhost:5000", {"insecure": "true", "credentials": CREDENTIALS})]))
    check = socker(ALICE, "config", "check")
    assert check.returncode == 1
    assert "an insecure registry gets no credentials" in check.stdout.decode(), check.stdout
