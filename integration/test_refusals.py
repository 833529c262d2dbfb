"""Bad input: a clear one-line error, exit status 125, and nothing changed."""

import os
from pathlib import Path

import pytest

from helpers import ABSENT_IMAGE, ALICE, CONFIG, FORBIDDEN_IMAGE, IMAGE, TEST_CONFIG, refused, socker, user


@pytest.mark.parametrize("args", [
    ["--privileged", "run", IMAGE, "true"],
    ["run", "--privileged", IMAGE, "true"],
    ["run", "--user=0", IMAGE, "true"],
    ["run", "-u", "0", IMAGE, "true"],
    ["run", "--cap-add=ALL", IMAGE, "true"],
    ["run", "--net=host", IMAGE, "true"],
    ["run", "--entrypoint=/bin/sh", IMAGE, "true"],
    ["frobnicate"],
    [],
])
def test_unknown_options_and_commands(args):
    refused(socker(ALICE, *args))


def test_image_not_allowed():
    refused(socker(ALICE, "run", FORBIDDEN_IMAGE, "true"), "not allowed")


def test_allowed_image_absent_from_node():
    refused(socker(ALICE, "run", ABSENT_IMAGE, "true"), "not present")


def test_invalid_image_reference():
    refused(socker(ALICE, "run", "Socker-Test/BusyBox:latest", "true"), "invalid image reference")


def test_volume_outside_policy():
    refused(socker(ALICE, "run", "-v", "/etc:/data", IMAGE, "true"), "outside")


def test_volume_prefix_look_alike():
    assert Path("/scratch2").is_dir()
    refused(socker(ALICE, "run", "-v", "/scratch2:/data", IMAGE, "true"), "outside")


def test_missing_volume_source_is_not_created(alice_scratch):
    missing = alice_scratch / "missing"
    refused(socker(ALICE, "run", "-v", f"{missing}:/data", IMAGE, "true"), "does not exist")
    assert not missing.exists()
    outside = Path("/var/tmp/socker-missing-volume")
    refused(socker(ALICE, "run", "-v", f"{outside}:/data", IMAGE, "true"), "does not exist")
    assert not outside.exists()


def test_symlink_leading_outside_policy(alice_scratch):
    link = alice_scratch / "etc"
    os.symlink("/etc", link)
    os.lchown(link, user(ALICE).pw_uid, user(ALICE).pw_gid)
    refused(socker(ALICE, "run", "-v", f"{link}:/data", IMAGE, "true"), "outside", "/etc")


def test_allowed_volume_is_mounted(alice_scratch):
    result = socker(ALICE, "run", "-v", f"{alice_scratch}:/data", IMAGE, "sh", "-c", "echo x > /data/f")
    assert result.returncode == 0, result.stderr
    assert (alice_scratch / "f").stat().st_uid == user(ALICE).pw_uid


def test_read_only_volume(alice_scratch):
    result = socker(ALICE, "run", "-v", f"{alice_scratch}:/data:ro", IMAGE, "touch", "/data/f")
    assert result.returncode != 0
    assert not (alice_scratch / "f").exists()


def test_protected_destination():
    refused(socker(ALICE, "run", "-v", f"{user(ALICE).pw_dir}:/etc", IMAGE, "true"), "/etc")


def test_engine_socket_missing(site_config):
    site_config(TEST_CONFIG + "engine:\n  socket: /var/run/no-such-docker.sock\n")
    refused(socker(ALICE, "run", IMAGE, "true"), "/var/run/no-such-docker.sock")


def test_config_missing():
    saved = CONFIG.read_bytes()
    CONFIG.unlink()
    try:
        refused(socker(ALICE, "run", IMAGE, "true"), str(CONFIG), "not found")
    finally:
        CONFIG.write_bytes(saved)
        os.chmod(CONFIG, 0o644)


def test_config_invalid_names_the_key(site_config):
    site_config(TEST_CONFIG + "netwrok: host\n")
    refused(socker(ALICE, "run", IMAGE, "true"), "netwrok")
    site_config("images: [" + IMAGE + "]\nvolumes: [scratch]\n")
    refused(socker(ALICE, "run", IMAGE, "true"), "volumes[0]")


def test_config_group_writable(site_config):
    site_config(TEST_CONFIG, mode=0o664)
    refused(socker(ALICE, "run", IMAGE, "true"), "insecure", "writable")


def test_config_owned_by_a_user(site_config):
    site_config(TEST_CONFIG)
    os.chown(CONFIG, user(ALICE).pw_uid, 0)
    refused(socker(ALICE, "run", IMAGE, "true"), "insecure", f"uid {user(ALICE).pw_uid}")


def test_config_directory_writable_by_others(site_config):
    site_config(TEST_CONFIG)
    os.chmod(CONFIG.parent, 0o777)
    refused(socker(ALICE, "run", IMAGE, "true"), "insecure", str(CONFIG.parent))


def test_workdir_under_proc():
    refused(socker(ALICE, "run", "-w", "/proc/self/fd/3", IMAGE, "true"), "/proc")

