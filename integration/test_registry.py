"""Images from the site's registry: pulled on first use, once per node, pinned, pruned.

Against the harness's real registry (integration/registry/up): its access log is the witness of
every pull. Each test publishes images of its own (siteregistry.publish), which no engine has yet.
"""

import base64
import binascii
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, IMAGE, SOCKER, auth_log_lines, docker, popen_socker, refused, run_as, socker,
                     socker_containers, unique, wait_until)
from siteregistry import (CREDENTIALS, HOST, NAMESPACE, NAMESPACE_ENTRY, OTHER_HOST, PULL_USER, SLOW_HOST, UNIQUE_FILE,
                          AccessLog, Throttle, password, present, pull_records_naming, remove_from_engine)

def on(host, image_reference):
    """The same image, named through another host:port of the registry (the throttling proxy)."""
    return image_reference.replace(HOST, host, 1)


def lines(stream):
    return stream.decode().splitlines()


# ------------------------------------------------------------------ first use

def test_first_use_pulls_the_image_then_runs_it(allow, published):
    image = published(payload_bytes=1 << 20)
    allow(NAMESPACE_ENTRY)
    log = AccessLog()
    command = ["sh", "-c", f"cat {UNIQUE_FILE}; seq 1 3000; echo to-stderr >&2"]
    first = socker(ALICE, "run", image.reference, *command)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"{image.token}\n1\n2\n".encode())
    assert log.pulls(image.reference) == 1
    start, end, container_stderr = lines(first.stderr)
    assert start == f"socker: pulling {image.reference}"
    assert end.startswith(f"socker: pulled {image.reference} ({image.digest}") and end.endswith(")")
    assert container_stderr == "to-stderr"
    assert present(image.reference)

    again = AccessLog()
    second = socker(ALICE, "run", image.reference, *command)
    assert second.returncode == 0, second.stderr
    assert second.stdout == first.stdout  # byte for byte: the pull said nothing on stdout
    assert lines(second.stderr) == ["to-stderr"]
    assert again.manifest_requests() == []  # a node that has the image does not ask the registry


def test_the_audit_says_what_was_pulled_and_its_digest(allow, published):
    image = published()
    allow(NAMESPACE_ENTRY)
    result = socker(ALICE, "run", image.reference, "true")
    assert result.returncode == 0, result.stderr
    image_id = docker("image", "inspect", "-f", "{{.Id}}", image.reference).strip()
    assert wait_until(lambda: any("result=exited" in line for line in auth_log_lines(image.reference)), timeout=10)
    [pull] = [line for line in auth_log_lines(image.reference) if "action=pull" in line]
    for field in (f"user={ALICE}", f"image={image.reference}", f"digest={image.digest}", f"image_id={image_id}",
                  "result=pulled"):
        assert field in pull, pull
    [run] = [line for line in auth_log_lines(image.reference) if "action=run" in line and "result=exited" in line]
    for field in (f"pulled={image.digest}", f"image_id={image_id}", "status=0"):
        assert field in run, run


def test_progress_is_live_on_a_terminal_and_never_on_stdout(allow, published):
    image = published(payload_bytes=12 << 20)
    slow = on(SLOW_HOST, image.reference)
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))
    controller, terminal = os.openpty()
    with Throttle(4 << 20):
        proc = popen_socker(ALICE, "run", slow, "cat", UNIQUE_FILE, stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # EIO: every writer of the terminal is gone
                break
            if not chunk:
                break
            shown += chunk
        out = proc.stdout.read()
        assert proc.wait(timeout=60) == 0, shown
    os.close(controller)
    assert out == f"{image.token}\n".encode()
    updates = shown.split(b"\r")
    assert len(updates) > 3, shown  # redrawn in place as the bytes arrive
    assert any(re.search(rb"[0-9.]+ of [0-9.]+ MB", u) and b"MB/s" in u and b"layer" in u for u in updates), shown
    last_line = re.split(rb"[\r\n]+", shown.strip())[-1].removeprefix(b"\x1b[K")  # the progress line cleared
    assert last_line.startswith(f"socker: pulled {slow} ({image.digest}".encode()), shown


# ------------------------------------------------------------------ one pull per node

def test_sixteen_simultaneous_runs_of_an_absent_image_pull_it_once(allow, published):
    image = published(payload_bytes=8 << 20)
    slow = on(SLOW_HOST, image.reference)
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))
    log = AccessLog()
    with Throttle(2 << 20):  # a pull of some 5 s: every rank starts while it lasts
        ranks = [popen_socker(ALICE if i % 2 else BOB, "run", slow, "cat", UNIQUE_FILE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(16)]
        results = [(*rank.communicate(timeout=300), rank.returncode) for rank in ranks]
    for out, err, status in results:
        assert status == 0, err
        assert out == f"{image.token}\n".encode()
    assert log.pulls(image.reference) == 1
    messages = [lines(err) for _, err, _ in results]
    pullers = [m for m in messages if any(line.startswith("socker: pulling ") for line in m)]
    assert len(pullers) == 1, messages
    waiters = [m for m in messages if m is not pullers[0]]
    assert all(m == [f"socker: waiting for another socker to pull {slow}"] for m in waiters), messages


def _start_pull_and_waiters(slow, waiters=3):
    puller = popen_socker(ALICE, "run", slow, "cat", UNIQUE_FILE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert puller.stderr.readline().decode() == f"socker: pulling {slow}\n"
    waiting = [popen_socker(BOB, "run", slow, "cat", UNIQUE_FILE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(waiters)]
    for waiter in waiting:
        assert waiter.stderr.readline().decode() == f"socker: waiting for another socker to pull {slow}\n"
    return puller, waiting


def _root_children(pid):
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if Path(f"/proc/{c}").stat().st_uid == 0]


def test_killing_the_pulling_socker_leaves_the_waiting_ones_to_run(allow, published):
    image = published(payload_bytes=8 << 20)
    slow = on(SLOW_HOST, image.reference)
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))
    log = AccessLog()
    with Throttle(2 << 20):
        puller, waiting = _start_pull_and_waiters(slow)
        puller.kill()
        assert puller.wait(timeout=10) == -signal.SIGKILL
        for waiter in waiting:
            out, err = waiter.communicate(timeout=300)
            assert waiter.returncode == 0, err
            assert out == f"{image.token}\n".encode()
    # The pull is root's, not the caller's: it went on to the end, for the others.
    assert log.pulls(image.reference) == 1


def test_when_the_pull_itself_is_killed_a_waiting_socker_takes_over(allow, published):
    image = published(payload_bytes=8 << 20)
    slow = on(SLOW_HOST, image.reference)
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))
    log = AccessLog()
    with Throttle(2 << 20):
        puller, waiting = _start_pull_and_waiters(slow)
        [pull] = _root_children(puller.pid)
        os.kill(pull, signal.SIGKILL)  # the kernel releases its lock
        out, err = puller.communicate(timeout=60)
        assert puller.returncode == 125 and out == b"", err
        said = []
        for waiter in waiting:
            out, err = waiter.communicate(timeout=300)
            assert waiter.returncode == 0, err
            assert out == f"{image.token}\n".encode()  # nothing half-pulled ran
            said.append(lines(err))
    took_over = [s for s in said if s]
    assert len(took_over) == 1 and took_over[0][0] == f"socker: pulling {slow}", said
    # The killed pull's and the one that took over (the engine may go on with a pull whose client
    # went away, and then the second finds the manifest's digest already known).
    assert 1 <= log.pulls(image.reference) <= 2


# ------------------------------------------------------------------ pinning

def test_a_digest_entry_runs_its_digest_when_the_tag_moves(allow, published):
    first = published(tag="v1")
    moved = published(first.name, tag="v1")  # the same tag, another image
    assert moved.digest != first.digest
    allow(first.pinned)
    log = AccessLog()
    result = socker(ALICE, "run", first.pinned, "cat", UNIQUE_FILE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{first.token}\n".encode()
    assert [(r.method, r.reference) for r in log.manifest_requests(first.reference)] == [("GET", first.digest)]
    refused(socker(ALICE, "run", first.reference, "cat", UNIQUE_FILE), "not allowed")


def test_a_tag_entry_stays_with_the_image_it_first_pulled(allow, published):
    first = published(tag="v1")
    allow(first.reference)
    assert socker(ALICE, "run", first.reference, "true").returncode == 0
    published(first.name, tag="v1")  # the tag moves in the registry
    log = AccessLog()
    result = socker(ALICE, "run", first.reference, "cat", UNIQUE_FILE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{first.token}\n".encode()
    assert log.manifest_requests() == []


# ------------------------------------------------------------------ namespaces and look-alikes

def test_a_namespace_entry_admits_every_repository_directly_below_it(allow, published):
    tagged, pinned = published(), published()
    allow(NAMESPACE_ENTRY)
    for image_reference, token in ((tagged.reference, tagged.token), (pinned.pinned, pinned.token)):
        result = socker(ALICE, "run", image_reference, "cat", UNIQUE_FILE)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{token}\n".encode()
    # The test image the harness pushed, with its default tag.
    result = socker(ALICE, "run", f"{HOST}/{NAMESPACE}/busybox", "sh", "-c", "test ! -e /etc/socker-forbidden")
    assert result.returncode == 0, result.stderr
    remove_from_engine(f"{HOST}/{NAMESPACE}/busybox")


# Each of these lies just outside `HOST/socker-test/*`; the harness's registries serve the
# forbidden image under every one of them that is a valid reference.
LOOK_ALIKES = [
    f"{HOST}/{NAMESPACE}/extra/busybox:latest",   # an extra component
    f"{HOST}/{NAMESPACE}ing/busybox:latest",      # a longer namespace
    f"{HOST}/busybox:latest",                     # the registry's top level
    f"{HOST}/{NAMESPACE}:latest",                 # the namespace itself
    f"{OTHER_HOST}/{NAMESPACE}/busybox:latest",   # another registry, same host
    f"socker-registry.test/{NAMESPACE}/busybox:latest",  # the default port
    f"{HOST.replace(':', ':0')}/{NAMESPACE}/busybox:latest",  # the port spelt otherwise
    f"{NAMESPACE}/busybox:latest",                # Docker Hub
]
INVALID = [
    f"{HOST}/{NAMESPACE}/../busybox:latest", f"{HOST}/{NAMESPACE}//busybox:latest",
    f"{HOST}/{NAMESPACE}/./busybox:latest", f"{HOST}/{NAMESPACE}/Busybox:latest",
    f"{HOST.upper()}/{NAMESPACE}/busybox:latest", f"[::1]:5443/{NAMESPACE}/busybox:latest",
    f"{HOST}/{NAMESPACE}/*", f"{HOST}/{NAMESPACE}/busybox:*", f"{HOST}/{NAMESPACE}/%2e%2e/busybox:latest",
    f"socker-registry.test.:5443/{NAMESPACE}/busybox:latest",
]


@pytest.mark.parametrize("look_alike", LOOK_ALIKES + INVALID)
def test_look_alikes_of_a_namespace_are_refused_and_never_pulled(allow, look_alike):
    allow(NAMESPACE_ENTRY)
    logs = [AccessLog(HOST), AccessLog(OTHER_HOST)]
    for command in (["run", look_alike, "cat", "/etc/socker-forbidden"], ["pull", look_alike]):
        message = refused(socker(ALICE, *command))
        assert "not allowed" in message or "invalid image reference" in message, message
    assert [log.lines() for log in logs] == [[], []]
    assert not any(present(name) for name in LOOK_ALIKES if name.startswith(HOST.split(":")[0]))


def test_an_allowed_image_on_an_unlisted_registry_is_never_pulled(allow):
    elsewhere = f"{OTHER_HOST}/{NAMESPACE}/busybox:latest"
    allow(elsewhere, NAMESPACE_ENTRY)
    log = AccessLog(OTHER_HOST)
    refused(socker(ALICE, "run", elsewhere, "true"), "not present", OTHER_HOST)
    refused(socker(ALICE, "pull", elsewhere), "not present", OTHER_HOST)
    assert log.lines() == [] and not present(elsewhere)


@pytest.mark.parametrize("entry, complaint", [
    (f"{HOST}/*", "top level"),
    (f"{OTHER_HOST}/{NAMESPACE}/*", "not listed"),
    (f"{HOST}/{NAMESPACE}/*/busybox", "invalid"),
    (f"{HOST}/{NAMESPACE}/bus*", "invalid"),
    (f"{HOST}/{NAMESPACE}/*:latest", "invalid"),
])
def test_namespace_entries_that_would_admit_too_much_are_configuration_errors(allow, entry, complaint):
    allow(IMAGE, entry)
    message = refused(socker(ALICE, "run", IMAGE, "true"), "images[1]")
    assert complaint in message, message
    check = socker(ALICE, "config", "check")
    assert check.returncode == 1 and b"images[1]" in check.stdout


# ------------------------------------------------------------------ socker pull, socker images

def test_socker_pull_stages_an_image_for_later_runs(allow, published):
    image = published()
    allow(NAMESPACE_ENTRY)
    log = AccessLog()
    result = socker(ALICE, "pull", image.reference)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert lines(result.stderr)[0] == f"socker: pulling {image.reference}"
    assert lines(result.stderr)[-1].startswith(f"socker: pulled {image.reference} ({image.digest}")
    again = socker(BOB, "pull", image.reference)
    assert again.returncode == 0, again.stderr
    assert lines(again.stderr) == [f"socker: {image.reference} is present on this node"]
    run = socker(BOB, "run", image.reference, "cat", UNIQUE_FILE)
    assert run.stdout == f"{image.token}\n".encode() and run.stderr == b""
    assert log.pulls(image.reference) == 1


def test_socker_pull_refuses_what_socker_run_refuses(allow):
    allow(NAMESPACE_ENTRY, IMAGE)
    refused(socker(ALICE, "pull", "socker-test/forbidden:latest"), "not allowed")
    refused(socker(ALICE, "pull"), "IMAGE")
    refused(socker(ALICE, "pull", IMAGE, IMAGE), "one IMAGE")
    refused(socker(ALICE, "pull", "--privileged", IMAGE), "option")


def test_images_says_which_are_present_and_which_can_be_pulled(allow, published):
    staged, absent, inside = published(), published(), published()
    elsewhere = f"{OTHER_HOST}/{NAMESPACE}/busybox:latest"
    allow(IMAGE, staged.reference, absent.pinned, elsewhere, NAMESPACE_ENTRY)
    for image in (staged, inside):
        assert socker(ALICE, "pull", image.reference).returncode == 0
    result = socker(ALICE, "images")
    assert result.returncode == 0, result.stderr
    header, *rows = lines(result.stdout)
    assert header.split() == ["IMAGE", "STATUS", "IMAGE", "ID"]
    status = {row.split()[0]: row.split()[1] for row in rows}
    image_id = docker("image", "inspect", "-f", "{{.Id}}", inside.reference).strip()
    assert status == {
        IMAGE: "present",
        staged.reference: "present",
        absent.pinned: "pullable",
        elsewhere: "absent",
        NAMESPACE_ENTRY: "pullable",
        inside.reference: "present",  # what a namespace holds on this node follows it
    }
    assert any(row.split() == [inside.reference, "present", image_id.removeprefix("sha256:")[:12]] for row in rows)


# ------------------------------------------------------------------ socker prune

def socker_as_root(*args):
    return subprocess.run([SOCKER, *args], capture_output=True, timeout=120)


def test_prune_removes_pulled_images_no_longer_allowed_and_unused(allow, published):
    kept, dropped, in_use = published(), published(), published()
    allow(kept.reference, dropped.reference, in_use.reference)
    for image in (kept, dropped, in_use):
        assert socker(ALICE, "pull", image.reference).returncode == 0
    loaded = f"{HOST}/{NAMESPACE}/loaded-{unique()}:1"  # an administrator's, not socker's
    docker("tag", IMAGE, loaded)
    running = popen_socker(ALICE, "run", in_use.reference, "sh", "-c", "echo ready; sleep 600",
                           stdout=subprocess.PIPE)
    try:
        assert running.stdout.readline() == b"ready\n"
        allow(kept.reference)
        result = socker_as_root("prune")
        assert result.returncode == 0, result.stderr
        assert not present(dropped.reference) and not present(dropped.pinned)
        assert present(kept.reference) and present(in_use.reference) and present(loaded)
        assert f"removed {dropped.reference}".encode() in result.stdout
        assert f"kept {in_use.reference}".encode() in result.stdout  # used by a container
    finally:
        running.send_signal(signal.SIGTERM)
        running.wait(timeout=30)
        docker("rmi", loaded)
    assert wait_until(lambda: not socker_containers(), timeout=15)
    result = socker_as_root("prune")
    assert result.returncode == 0, result.stderr
    assert not present(in_use.reference) and present(kept.reference)
    assert not pull_records_naming(in_use.reference) and pull_records_naming(kept.reference)


def test_prune_is_for_root_only(allow, published):
    image = published()
    allow(image.reference)
    assert socker(ALICE, "pull", image.reference).returncode == 0
    allow(IMAGE)
    refused(socker(ALICE, "prune"), "root")
    assert present(image.reference)


# ------------------------------------------------------------------ credentials

SCAN_PROCESSES = r"""
import os, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    for name in ("cmdline", "environ"):
        try:
            sys.stdout.buffer.write(open(f"/proc/{pid}/{name}", "rb").read() + b"\n")
        except OSError:
            pass
"""


def _decoded_forms(text):
    """`text` and everything in it that decodes as base64: where an encoded secret would show."""
    found = [text]
    for token in re.findall(rb"[A-Za-z0-9+/_=-]{16,}", text):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                found.append(decode(token + b"=" * (-len(token) % 4)))
            except (binascii.Error, ValueError):
                pass
    return found


def assert_secret_absent(text):
    secret = password(PULL_USER).encode()
    for form in _decoded_forms(text):
        assert secret not in form


def test_credentials_never_reach_the_user(allow, published):
    image = published(payload_bytes=8 << 20)
    slow = on(SLOW_HOST, image.reference)
    allow(f"{SLOW_HOST}/{NAMESPACE}/*", hosts=(SLOW_HOST,))
    with Throttle(2 << 20):
        proc = popen_socker(ALICE, "run", slow, "sh", "-c", "env; cat /proc/1/environ",
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stderr.readline().startswith(b"socker: pulling ")
        # While the pull runs: every process's command line and environment that alice can read.
        seen = run_as(ALICE, ["python3", "-c", SCAN_PROCESSES])
        assert seen.returncode == 0 and seen.stdout
        ps = run_as(ALICE, ["ps", "auxeww"])
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    for text in (seen.stdout, ps.stdout, out, err):
        assert_secret_absent(text)
    assert wait_until(lambda: any("result=exited" in line for line in auth_log_lines(slow)), timeout=10)
    for line in auth_log_lines(slow):
        assert_secret_absent(line.encode())
    assert run_as(ALICE, ["cat", str(CREDENTIALS)]).returncode != 0
    assert run_as(ALICE, ["ls", "/run/socker/pulls"]).returncode != 0
