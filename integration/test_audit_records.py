"""Every run leaves a complete audit record, whatever its arguments, and no container runs unrecorded.

The records are read back from the real syslog daemon's file (rsyslog, /var/log/auth.log): what
an administrator would read.
"""

import hashlib
import json
import re
import signal
import subprocess
import time

import pytest

from helpers import (ALICE, FORBIDDEN_IMAGE, IMAGE, TEST_CONFIG, docker, popen_socker, socker, socker_containers,
                     unique, user, wait_for_audit, wait_until)

MAX_RECORD = 4096  # socker.audit.MAX_RECORD
MAX_ARG_STRLEN = 128 * 1024  # the kernel's limit on one argument
_FIELD = re.compile(r'([A-Za-z_]+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?: |\Z)')


def fields_of(line):
    """The record's fields, read back from its syslog line."""
    record = line.split("]: ", 1)[1]
    fields, position = {}, 0
    while position < len(record):
        match = _FIELD.match(record, position)
        assert match, f"unparseable at {record[position:position + 80]!r}"
        key, value = match.groups()
        fields[key] = json.loads(value) if value.startswith('"') else value
        position = match.end()
    return record, fields


def records(marker, results, timeout=15):
    """{result: fields} of the records of the run whose command holds `marker`."""
    wait_until(lambda: {fields_of(l)[1]["result"] for l in wait_for_audit(marker, 1)} >= set(results), timeout)
    found = {}
    for line in wait_for_audit(marker):
        record, fields = fields_of(line)
        assert len(record.encode()) <= MAX_RECORD, len(record)
        found[fields["result"]] = fields
    assert set(found) == set(results), found
    return found


def assert_command_recorded(fields, command):
    whole = json.dumps(command)
    if fields["command"] == whole:
        return
    match = re.fullmatch(r"(.*)\.\.\.\[cut: (\d+) bytes, sha256 ([0-9a-f]{64})\]", fields["command"], re.S)
    assert match and whole.startswith(match.group(1)), fields["command"][-200:]
    assert (int(match.group(2)), match.group(3)) == (len(whole.encode()), hashlib.sha256(whole.encode()).hexdigest())


@pytest.mark.parametrize("size", [1000, 8 * 1024, 20 * 1024, 100 * 1024, 212 * 1024, 600 * 1024, 1800 * 1024])
def test_a_run_of_any_command_size_is_recorded_whole(size):
    marker = unique()
    words = [marker] + [f"w{i:07d}" for i in range(size // 9)]
    args = [words[i:i + 1000] for i in range(0, len(words), 1000)]
    command = ["sh", "-c", 'echo "$#"', "sh", *[" ".join(chunk) for chunk in args]]
    assert all(len(arg) < MAX_ARG_STRLEN for arg in command)
    result = socker(ALICE, "run", IMAGE, *command)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, str(len(args)).encode(), b"")
    found = records(marker, {"created", "exited"})
    container, docker_id = found["created"]["container"], found["created"]["container_id"]
    assert re.fullmatch(rf"socker-{user(ALICE).pw_uid}-[0-9a-f]{{12}}", container)
    assert re.fullmatch(r"[0-9a-f]{12}", docker_id)
    for result_word, fields in found.items():
        assert fields["user"] == ALICE and fields["image"] == IMAGE
        assert (fields["container"], fields["container_id"]) == (container, docker_id)
        assert fields["image_id"].startswith("sha256:")
        assert_command_recorded(fields, command)
    assert found["exited"]["status"] == "0"


@pytest.mark.parametrize("size", [20 * 1024, 212 * 1024, 1024 * 1024])
def test_a_refusal_of_any_size_is_recorded_whole(size):
    marker = unique()
    command = ["sh", "-c", marker, *(["y" * 100_000] * (size // 100_000)), "z" * (size % 100_000)]
    result = socker(ALICE, "run", FORBIDDEN_IMAGE, *command)
    assert result.returncode == 125 and b"not allowed" in result.stderr
    fields = records(marker, {"refused"})["refused"]
    assert fields["user"] == ALICE and "not allowed" in fields["reason"] and "kind" not in fields
    assert_command_recorded(fields, command)


@pytest.mark.parametrize("volumes, env_size", [(0, 100_000), (64, 0), (64, 120_000)])
def test_large_environments_and_volume_lists_leave_the_record_whole(volumes, env_size, alice_scratch):
    marker = unique()
    long_name = "d" * 200
    for i in range(volumes):
        (alice_scratch / f"{long_name}{i}").mkdir()
    args = [a for i in range(volumes) for a in ("-v", f"{alice_scratch}/{long_name}{i}:/v{i}:ro")]
    for chunk in range(env_size // 100_000 + 1):
        args += ["-e", f"BIG{chunk}={'e' * min(100_000, env_size)}"]
    result = socker(ALICE, "run", *args, IMAGE, "echo", marker)
    assert (result.returncode, result.stdout) == (0, f"{marker}\n".encode()), result.stderr
    found = records(marker, {"created", "exited"})
    assert found["exited"]["status"] == "0"
    assert all(found["exited"][key] == found["created"][key] for key in ("container", "container_id")), found


def test_a_stopped_socker_runs_no_unrecorded_container():
    marker = unique()
    run = popen_socker(ALICE, "run", IMAGE, "sh", "-c", f"sleep 600 # {marker}",
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def running():
            return docker("ps", "-q", "--no-trunc", "--filter", "label=socker", "--filter", "status=running").split()

        assert wait_until(running, timeout=30)
        run.send_signal(signal.SIGSTOP)
        assert len(running()) == 1
        created = records(marker, {"created"})["created"]
        assert running()[0].startswith(created["container_id"]) and created["user"] == ALICE
    finally:
        run.send_signal(signal.SIGCONT)
        run.send_signal(signal.SIGTERM)
        run.wait(30)
    assert set(records(marker, {"created", "exited"})) == {"created", "exited"}


@pytest.mark.parametrize("configured, said, reason, kind", [
    # More CPUs than the machine has: a limit the configuration allows and the engine refuses.
    ("outside_jobs:\n  cpus: 4096\n", "CPUs", "CPUs", "create"),
    # The first request to the engine asks whether the node has the image.
    ("engine:\n  socket: /run/socker-test-no-engine/docker.sock\n", "engine",
     "/run/socker-test-no-engine/docker.sock", "pull"),
], ids=["engine-refuses-the-create", "engine-unreachable"])
def test_what_the_engine_could_not_do_is_recorded_failed_with_its_kind_and_reason(site_config, configured, said, reason,
                                                                                  kind):
    site_config(TEST_CONFIG + configured)
    marker = unique()
    result = socker(ALICE, "run", IMAGE, "echo", marker)
    assert result.returncode == 125 and said.encode() in result.stderr, result
    found = records(marker, {"failed"})
    assert reason in found["failed"]["reason"] and found["failed"]["kind"] == kind, found["failed"]
    assert not socker_containers()


def test_a_broken_configuration_is_recorded_failed_not_refused(site_config):
    # The admin's mistake is no refusal of the caller's request.
    site_config(TEST_CONFIG + "network: everywhere\n")
    marker = unique()
    result = socker(ALICE, "run", IMAGE, "echo", marker)
    assert result.returncode == 125 and b"network" in result.stderr, result
    failed = records(marker, {"failed"})["failed"]
    assert failed["kind"] == "config" and "network" in failed["reason"], failed
    assert not socker_containers()


def test_a_stream_of_interrupts_as_a_run_ends_leaves_its_status_and_one_end_record():
    # socker forwards each ^C to the container, which ignores them; they keep coming while socker
    # removes the container and ends the run's record, which nothing may interrupt.
    marker = unique()
    run = popen_socker(ALICE, "run", IMAGE, "sh", "-c", f"trap '' INT; sleep 2; exit 3 # {marker}",
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # From the start of the container on: before it, a ^C interrupts the run, as it should.
    assert wait_until(lambda: docker("ps", "-q", "--filter", "label=socker", "--filter", "status=running"), 30)
    sent = 0
    while run.poll() is None:
        run.send_signal(signal.SIGINT)
        sent += 1
        time.sleep(0.005)  # the pace of the stream, not a wait for anything
    assert (run.returncode, run.stderr.read()) == (3, b"") and sent > 20
    assert wait_until(lambda: len(wait_for_audit(marker)) >= 2, timeout=15)
    results = [fields_of(line)[1] for line in wait_for_audit(marker)]
    assert [(r["result"], r.get("status")) for r in results] == [("created", None), ("exited", "3")], results
    assert not socker_containers()

