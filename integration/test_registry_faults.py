"""Every way a pull can fail: exit status 125, one line naming the cause, and nothing left behind.

Nothing left behind: no container, no image under the name asked for, no record that socker
pulled it, and for the refusals that come before any pull, not one request to the registry.
"""

import os
import pwd
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import ALICE, IMAGE, auth_log_lines, refused, socker, socker_containers, unique, wait_until
from siteregistry import (CLOSED_HOST, CREDENTIALS, HOST, NAMESPACE, NAMESPACE_ENTRY, PULL_USER, SILENT_HOST, AccessLog,
                          SilentServer, password, present, pull_records_naming, reference, serving_instead,
                          socker_config, write_root_file)


def pull_failed(result, image_reference, *phrases):
    """The pull failed: status 125, nothing on stdout, on stderr the line that says why (after the
    one that said the pull had started, if it had), no container, no image, no record of a pull."""
    assert result.returncode == 125, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == b""
    said = result.stderr.decode().splitlines()
    assert said[:-1] in ([], [f"socker: pulling {image_reference}"]), said
    message = said[-1]
    assert message.startswith(f"socker: cannot pull {image_reference}: "), message
    for phrase in phrases:
        assert phrase in message, message
    assert not socker_containers()
    assert not present(image_reference)
    assert not pull_records_naming(image_reference)
    return message


def test_a_registry_that_cannot_be_reached(site_config, credentials):
    image_reference = f"{CLOSED_HOST}/{NAMESPACE}/busybox:latest"
    site_config(socker_config([f"{CLOSED_HOST}/{NAMESPACE}/*"], [(CLOSED_HOST, {"credentials": CREDENTIALS})]))
    result = socker(ALICE, "run", image_reference, "true", timeout=30)
    pull_failed(result, image_reference, f"cannot reach the registry {CLOSED_HOST}")


def test_a_registry_that_stops_answering_is_given_up_on_in_bounded_time(site_config, credentials):
    image_reference = f"{SILENT_HOST}/{NAMESPACE}/busybox:latest"
    site_config(socker_config([f"{SILENT_HOST}/{NAMESPACE}/*"],
                            [(SILENT_HOST, {"credentials": CREDENTIALS, "timeout": 3})]))
    with SilentServer():
        # Only the registry's 3 s timeout gives this error: the silent registry never answers.
        result = socker(ALICE, "run", image_reference, "true", timeout=60)
    pull_failed(result, image_reference, f"the registry {SILENT_HOST} did not answer within 3 s")


@pytest.mark.parametrize("image_reference", [
    reference(f"no-such-{unique()}"),
    reference("busybox", tag="no-such-tag"),
    f"{HOST}/{NAMESPACE}/busybox@sha256:{'0' * 64}",
])
def test_an_image_tag_or_digest_the_registry_does_not_have(allow, image_reference):
    allow(NAMESPACE_ENTRY)
    for command in (["run", image_reference, "true"], ["pull", image_reference]):
        pull_failed(socker(ALICE, *command), image_reference, "not in the registry")


def test_wrong_credentials(site_config, published):
    image = published()
    wrong = f"wrong-{unique()}"
    write_root_file(CREDENTIALS, f"username: {PULL_USER}\npassword: {wrong}\n", 0o600)
    try:
        site_config(socker_config([NAMESPACE_ENTRY], [(HOST, {"credentials": CREDENTIALS})]))
        log = AccessLog()
        result = socker(ALICE, "run", image.reference, "true")
        message = pull_failed(result, image.reference, f"the registry {HOST} refused socker's credentials")
        assert any(r.status == 401 for r in log.manifest_requests(image.reference))
        assert wrong not in message and password(PULL_USER) not in message
        assert wait_until(lambda: auth_log_lines(image.reference), timeout=10)
        assert not any(wrong in line for line in auth_log_lines(image.reference))
    finally:
        CREDENTIALS.unlink()


def test_no_credentials_for_a_registry_that_wants_them(site_config, published):
    image = published()
    site_config(socker_config([NAMESPACE_ENTRY], [(HOST, {})]))
    pull_failed(socker(ALICE, "run", image.reference, "true"), image.reference,
                f"the registry {HOST} wants credentials, and none are configured for it")


def test_a_digest_that_does_not_match_what_the_registry_serves(allow, published):
    image = published()
    allow(image.pinned)
    # A tampered registry serves the forbidden image's manifest under the pinned digest.
    with serving_instead(image.pinned, reference("forbidden")):
        result = socker(ALICE, "run", image.pinned, "cat", "/etc/socker-forbidden")
    pull_failed(result, image.pinned, f"does not match {image.digest}")
    assert b"must never" not in result.stdout + result.stderr


SMALL_ENGINE = Path("/run/socker-test-small-engine")


@pytest.fixture
def small_engine():
    """A second Docker engine whose disk (a tmpfs) holds 40 MiB; yields its socket."""
    SMALL_ENGINE.mkdir(mode=0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m,mode=0700", "tmpfs", str(SMALL_ENGINE)], check=True)
    socket_path = SMALL_ENGINE / "docker.sock"
    daemon = subprocess.Popen(
        ["dockerd", "--data-root", f"{SMALL_ENGINE}/data", "--exec-root", f"{SMALL_ENGINE}/exec",
         "-H", f"unix://{socket_path}", "--pidfile", f"{SMALL_ENGINE}/docker.pid", "--group", "root",
         "--storage-driver", "vfs", "--bridge", "none", "--iptables=false", "--ip-masq=false",
         "--exec-opt", "native.cgroupdriver=cgroupfs"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_until(lambda: subprocess.run(["docker", "-H", f"unix://{socket_path}", "info"],
                                                 capture_output=True).returncode == 0, timeout=60)
        yield socket_path
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        subprocess.run(["umount", str(SMALL_ENGINE)], check=True)
        SMALL_ENGINE.rmdir()


def test_a_full_disk(site_config, credentials, published, small_engine):
    image = published(payload_bytes=64 << 20)
    site_config(socker_config([NAMESPACE_ENTRY], [(HOST, {"credentials": CREDENTIALS})])
                + f"engine:\n  socket: {small_engine}\n")
    result = socker(ALICE, "run", image.reference, "true")
    assert result.returncode == 125, result.stderr
    message = result.stderr.decode().splitlines()[-1]
    assert message.startswith(f"socker: cannot pull {image.reference}: ") and "the engine's disk is full" in message
    images = subprocess.run(["docker", "-H", f"unix://{small_engine}", "images", "-aq"],
                            capture_output=True, text=True, check=True).stdout
    assert images == ""  # nothing half-pulled
    assert shutil.disk_usage(SMALL_ENGINE).used < 8 << 20
    assert not pull_records_naming(image.reference)


def _insecure_mode(path):
    os.chmod(path, 0o640)


def _insecure_group_read(path):
    os.chmod(path, 0o604)


def _owned_by_a_user(path):
    os.chown(path, pwd.getpwnam(ALICE).pw_uid, 0)


def _a_symbolic_link(path):
    real = path.with_name(path.name + ".real")
    os.rename(path, real)
    os.symlink(real, path)


def _in_a_group_writable_directory(path):
    directory = path.parent / "socker-test-credentials"
    directory.mkdir(mode=0o775)
    os.chmod(directory, 0o775)
    os.rename(path, directory / path.name)


@pytest.mark.parametrize("spoil, complaint", [
    (_insecure_mode, "insecure: file is readable by group or others (mode 0640)"),
    (_insecure_group_read, "insecure: file is readable by group or others (mode 0604)"),
    (_owned_by_a_user, "insecure: file is owned by uid"),
    (_a_symbolic_link, "cannot open safely"),
    (_in_a_group_writable_directory, "insecure: directory is writable by group or others"),
])
def test_an_insecure_credentials_file(site_config, credentials, published, spoil, complaint):
    image = published()
    spoil(credentials)
    where = credentials.parent / "socker-test-credentials" / credentials.name \
        if spoil is _in_a_group_writable_directory else credentials
    site_config(socker_config([NAMESPACE_ENTRY], [(HOST, {"credentials": where})]))
    log = AccessLog()
    try:
        message = pull_failed(socker(ALICE, "run", image.reference, "true"), image.reference, complaint)
        assert str(where) in message or where.parent.name in message
        assert log.lines() == []  # refused before the engine was asked
        check = socker(ALICE, "config", "check")
        assert check.returncode == 1 and complaint.encode() in check.stdout, check.stdout
    finally:
        for leftover in (credentials.with_name(credentials.name + ".real"),
                         credentials.parent / "socker-test-credentials"):
            if leftover.is_dir():
                shutil.rmtree(leftover)
            else:
                leftover.unlink(missing_ok=True)


def test_config_check_reads_the_credentials_file_and_never_shows_it(site_config, credentials):
    write_root_file(credentials, f"username: {PULL_USER}\npasword: {password(PULL_USER)}\n", 0o600)
    site_config(socker_config([NAMESPACE_ENTRY], [(HOST, {"credentials": credentials})]))
    check = socker(ALICE, "config", "check")
    assert check.returncode == 1
    assert f"{credentials}: pasword: unknown key".encode() in check.stdout
    assert password(PULL_USER).encode() not in check.stdout + check.stderr


def test_a_listed_registry_needs_valid_settings(site_config):
    site_config(socker_config([IMAGE], [(HOST, {"timeout": 0})]))
    refused(socker(ALICE, "run", IMAGE, "true"), "registries[0].timeout")
    site_config(socker_config([IMAGE], [(f"{HOST}/{NAMESPACE}", {})]))
    refused(socker(ALICE, "run", IMAGE, "true"), "registries[0].host")
    site_config(socker_config([IMAGE], [(HOST, {"credentials": "relative.yaml"})]))
    refused(socker(ALICE, "run", IMAGE, "true"), "registries[0].credentials")
