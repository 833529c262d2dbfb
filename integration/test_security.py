"""Attacks on the installed setuid binary, as an unprivileged user.

Each test asserts that socker refused or neutralised the attempt, and that
nothing happened: no container left (checked after every test by
conftest.nothing_left_behind), no file created, no host path exposed, no
privilege gained.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, FORBIDDEN_IMAGE, IMAGE, ROOTUSER_IMAGE, SOCKER, docker, popen_socker, refused,
                     run_as, socker, unique, user, wait_for_audit)


# ------------------------------------------------------------------ smuggled engine options

@pytest.mark.parametrize("options", [
    ["--privileged"], ["--user=0"], ["-u", "0"], ["--user", "root"], ["--cap-add=SYS_ADMIN"],
    ["--cap-add", "ALL"], ["--device=/dev/sda"], ["--device", "/dev/mem"], ["--pid=host"],
    ["--ipc=host"], ["--net=host"], ["--network", "host"], ["--userns=host"], ["--uts=host"],
    ["--cgroup-parent=/"], ["--cgroupns=host"], ["--security-opt=seccomp=unconfined"],
    ["--security-opt", "apparmor=unconfined"], ["--entrypoint=/bin/sh"], ["--mount", "type=bind,src=/,dst=/host"],
    ["--volumes-from", "other"], ["--group-add=0"], ["--env-file=/etc/shadow"], ["-p", "80:80"],
    ["--runtime=runc"], ["--init-path=/tmp/x"], ["--sysctl", "kernel.core_pattern=|/tmp/x"],
    ["--rm"], ["-d"], ["--name=socker-0-x"], ["--label=socker.uid=0"], ["-it5"],
])
def test_engine_options_are_refused(options):
    refused(socker(ALICE, "run", *options, IMAGE, "id", "-u"), "option")


@pytest.mark.parametrize("argv", [
    ["run", "--", "--privileged", "id"],      # an image that looks like an option
    ["run", "-v", "/:/host", "--", IMAGE],    # -v with a source outside policy, before --
    ["--privileged", "run", IMAGE, "id"],     # an option before the subcommand
])
def test_option_lookalikes_are_refused(argv):
    refused(socker(ALICE, *argv))


def test_options_after_the_image_go_to_the_command_not_the_engine():
    result = socker(ALICE, "run", IMAGE, "--privileged", "--user=0")
    assert result.returncode == 127  # the image has no command named --privileged
    assert b"--privileged" in result.stderr


# ------------------------------------------------------------------ allow-list bypass

@pytest.mark.parametrize("image", [
    "socker-test/busybox:latest ", " socker-test/busybox:latest", "socker-test/busybox:latest\n",
    "socker-test/busybox:Latest", "Socker-test/busybox:latest", "SOCKER-TEST/BUSYBOX:LATEST",
    "socker-test/busybox:latest2", "socker-test/busybox2:latest", "socker-test/busybox:lates",
    "evil.example.org/socker-test/busybox:latest", "localhost/socker-test/busybox:latest",
    "socker-test/busybox:latest@sha256:" + "0" * 64, "socker-test//busybox:latest",
    "socker-test/busybox:latest/../forbidden", FORBIDDEN_IMAGE, "socker-test/forbidden",
])
def test_allow_list_look_alikes_are_refused(image):
    refused(socker(ALICE, "run", image, "true"))


def test_image_ids_are_refused():
    image_id = docker("image", "inspect", "-f", "{{.Id}}", FORBIDDEN_IMAGE).strip()
    refused(socker(ALICE, "run", image_id, "true"))
    refused(socker(ALICE, "run", image_id.removeprefix("sha256:")[:12], "true"))


def test_container_is_created_from_the_image_id_that_was_checked():
    """A tag moved after the check cannot change what runs: the container names the image by ID."""
    marker = unique()
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", f"echo {marker}; sleep 600", stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().decode().strip() == marker
        [cid] = docker("ps", "-q", "--filter", "label=socker").split()
        created_from = docker("inspect", "-f", "{{.Config.Image}}", cid).strip()
        assert created_from == docker("image", "inspect", "-f", "{{.Id}}", IMAGE).strip()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


# ------------------------------------------------------------------ bind mounts

RACE_RUNS = 25

def as_alice(path):
    os.lchown(path, user(ALICE).pw_uid, user(ALICE).pw_gid)
    return path


@pytest.mark.parametrize("volume", [
    "/:/host", "/etc:/data", "/root:/data", "/var/run/docker.sock:/docker.sock", "/run/socker:/data",
    "/scratch2:/data", f"/home/{BOB}:/data", f"/scratch/{BOB}:/data",
    f"/scratch/{ALICE}/../../etc:/data", f"/scratch/{ALICE}/../{BOB}:/data", "/proc/1/root:/data",
    "/dev:/data", "/sys:/data",
])
def test_volumes_outside_policy_are_refused(volume):
    refused(socker(ALICE, "run", "-v", volume, IMAGE, "true"))


@pytest.mark.parametrize("target", ["/etc", "/etc/passwd", "/proc", "/proc/self", "/sys", "/sys/fs/cgroup",
                                    "/dev", "/dev/shm", "/", "/data/../etc", "//etc", "relative"])
def test_protected_or_malformed_destinations_are_refused(target, alice_scratch):
    refused(socker(ALICE, "run", "-v", f"{alice_scratch}:{target}", IMAGE, "true"))


def test_symlink_in_a_parent_of_the_source(alice_scratch):
    os.symlink("/", alice_scratch / "up")
    as_alice(alice_scratch / "up")
    refused(socker(ALICE, "run", "-v", f"{alice_scratch}/up/etc:/data", IMAGE, "true"), "outside")


def test_symlink_to_another_users_scratch(alice_scratch):
    os.symlink(f"/scratch/{BOB}", alice_scratch / "bob")
    as_alice(alice_scratch / "bob")
    refused(socker(ALICE, "run", "-v", f"{alice_scratch}/bob:/data", IMAGE, "true"))


def test_missing_source_is_not_created_even_under_an_unwritable_parent(alice_scratch):
    target = Path("/root/socker-created")
    refused(socker(ALICE, "run", "-v", f"{target}:/data", IMAGE, "true"))
    assert not target.exists()


@pytest.mark.parametrize("volume", ["{s}/a:b:/data", "{s}/a,b:/data", "{s}/a:/data:rw:ro", "{s}/a:/data:z",
                                    "{s}/a:/da:ta"])
def test_colons_and_commas_in_paths(volume, alice_scratch):
    for name in ("a", "a,b", "a:b"):
        (alice_scratch / name).mkdir()
        as_alice(alice_scratch / name)
    spec = volume.format(s=alice_scratch)
    result = socker(ALICE, "run", "-v", spec, IMAGE, "true")
    if "," in spec and spec.count(":") == 1:
        assert result.returncode == 0, result.stderr  # a comma is only a character in the Mounts API
    else:
        refused(result)


def _bob_scratch_entries():
    return sorted(os.listdir(f"/scratch/{BOB}"))


@pytest.mark.parametrize("args, phrase", [
    # The engine would create a missing mount point as root, through a mount: here into bob's
    # private directory, through a mount of the root-owned /scratch. A working directory is
    # entered by the caller, in the container: a missing one is an error, never created.
    (["-v", "/scratch:/s", "-w", f"/s/{BOB}/made-by-root"], "cannot write; mount it read-only"),
    (["-v", "/scratch:/s:ro", "-w", f"/s/{BOB}/made-by-root"], "cannot enter the working directory"),
    (["-v", "/scratch/{alice}:/s", "-w", "/s/made-by-root"], "cannot enter the working directory"),
    (["-v", "/scratch:/s", "-v", f"/home/{ALICE}:/s/{BOB}/made-by-root"], "cannot write"),
    (["-v", f"/scratch/{ALICE}:/s", "-v", f"/home/{ALICE}:/s/x"], "lies inside another mount's"),
    (["-v", f"/scratch/{ALICE}:/home/{ALICE}/x"], "lies inside another mount's"),
])
def test_nothing_is_created_as_root_through_a_mount(args, phrase, alice_scratch):
    args = [arg.replace("{alice}", ALICE) for arg in args]
    before = _bob_scratch_entries(), sorted(os.listdir(f"/home/{ALICE}")), sorted(os.listdir(alice_scratch))
    refused(socker(ALICE, "run", *args, IMAGE, "true"), phrase)
    assert (_bob_scratch_entries(), sorted(os.listdir(f"/home/{ALICE}")), sorted(os.listdir(alice_scratch))) == before


def test_an_image_volume_inside_a_bind_mount_is_refused(alice_scratch):
    # socker-test/rootuser declares VOLUME /var/lib/data: its mount point would be made in x.
    refused(socker(ALICE, "run", "-v", f"{alice_scratch}:/var/lib", ROOTUSER_IMAGE, "true"),
            "the image's volume /var/lib/data lies inside")
    assert not list(alice_scratch.iterdir())


def test_a_destination_under_a_symlink_in_home_cannot_cover_etc(alice_scratch):
    link = Path(f"/home/{ALICE}/link-etc")
    os.symlink("/etc", link)
    as_alice(link)
    try:
        (alice_scratch / "group").write_text("evil:x:0:socker-alice\n")
        as_alice(alice_scratch / "group")
        refused(socker(ALICE, "run", "-v", f"{alice_scratch}/group:{link}/group", IMAGE, "true"), "lies inside")
    finally:
        link.unlink()


def test_a_current_directory_the_caller_cannot_write_is_mounted_read_only():
    # cd /scratch (root's): mounted so that the caller sees it, read-only so that the engine
    # creates nothing in it either.
    before = sorted(os.listdir("/scratch"))
    result = run_as(ALICE, ["sh", "-c", f"cd /scratch && exec {SOCKER} run {IMAGE} sh -c 'ls; mkdir x 2>&1; true'"])
    assert result.returncode == 0, result.stderr
    assert ALICE in result.stdout.decode() and "Read-only file system" in result.stdout.decode()
    assert sorted(os.listdir("/scratch")) == before


def test_symlink_swapped_between_check_and_use_exposes_nothing(alice_scratch):
    """A racing swapper replaces the checked directory by a symlink to /root over and over.

    The directory stays for up to 0.9 s at a time, the symlink for up to 0.09 s: some runs
    find the directory throughout and mount it, others see the symlink, others a swap between
    socker's check and the engine's mount.
    """
    secret = Path("/root/socker-race-secret")
    secret.write_text("secret\n")
    secret.chmod(0o644)  # readable, but /root itself is not traversable for alice
    swap = ("while :; do rm -f d; mkdir d; sleep 0.$((RANDOM % 10)); rmdir d; ln -s /root d; "
            "sleep 0.0$((RANDOM % 10)); done")
    swapper = subprocess.Popen(
        ["setpriv", f"--reuid={user(ALICE).pw_uid}", f"--regid={user(ALICE).pw_gid}", "--init-groups",
         "bash", "-c", swap], cwd=alice_scratch, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mounted = 0
    try:
        for _ in range(RACE_RUNS):
            # The owner of what /data is: alice's directory d, or /root (root's).
            result = socker(ALICE, "run", "-v", f"{alice_scratch}/d:/data", IMAGE,
                            "sh", "-c", "stat -c %u /data && cat /data/socker-race-secret")
            assert b"secret" not in result.stdout
            if result.returncode == 125:  # refused, or the mount failed: d was swapped
                assert result.stderr.startswith(b"socker: ") and result.stdout == b"", result
            else:  # the container ran: on alice's directory, in which there is no secret
                assert result.stdout.decode().split() == [str(user(ALICE).pw_uid)], result
                assert result.returncode == 1 and b"socker-race-secret" in result.stderr, result
                mounted += 1
    finally:
        swapper.kill()
        swapper.wait()
        secret.unlink()
    # Were every run refused, the race would not have been run at all.
    assert mounted >= 1, f"none of {RACE_RUNS} runs mounted the directory"


# ------------------------------------------------------------------ identity

def test_environment_cannot_change_identity():
    alice = user(ALICE)
    result = socker(ALICE, "run", "-e", "USER=root", "-e", "HOME=/root", "-e", "UID=0", IMAGE, "id", "-u")
    assert result.stdout.decode().strip() == str(alice.pw_uid)


def test_bob_cannot_read_alices_files_through_socker():
    secret = Path(user(ALICE).pw_dir) / "private"
    secret.write_text("alice only\n")
    os.chown(secret, user(ALICE).pw_uid, user(ALICE).pw_gid)
    secret.chmod(0o600)
    try:
        result = socker(BOB, "run", "-v", f"{secret}:/data", IMAGE, "cat", "/data")
        refused(result)
        # Nothing of alice's home is mounted for bob: the file is not there.
        result = socker(BOB, "run", IMAGE, "cat", str(secret))
        assert (result.returncode, result.stdout) == (1, b""), result
        assert result.stderr == f"cat: can't open '{secret}': No such file or directory\n".encode()
    finally:
        secret.unlink()


# ------------------------------------------------------------------ the setuid process's inputs

@pytest.fixture
def public_dir():
    """A fresh directory every user can read (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="socker-test-", dir="/var/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
def evil(public_dir):
    """A directory of traps, readable by everyone, each of which creates a marker file if it ever runs."""
    root = public_dir
    marker = root / "PWNED"
    for module in ("docker", "yaml", "os", "sitecustomize", "usercustomize", "requests", "socket", "encodings"):
        (root / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('{module}')\n")
    for program in ("docker", "docker-init", "runc", "sh", "docker-credential-evil", "id"):
        path = root / program
        path.write_text(f"#!/bin/sh\necho {program} > {marker}\n")
        path.chmod(0o755)
    (root / ".docker").mkdir()
    (root / ".docker" / "config.json").write_text(json.dumps({"credsStore": "evil", "proxies": {
        "default": {"httpProxy": "http://127.0.0.1:9", "noProxy": ""}}}))
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(root / "evil.so"), "-x", "c", "-"], check=True,
                   # It fires only in a setuid process: setpriv, started by root, loads it too.
                   input=f'#include <stdio.h>\n#include <unistd.h>\n__attribute__((constructor)) static void p(void)'
                         f'{{ if (getuid() != 0 && geteuid() == 0) {{ FILE *f = fopen("{marker}", "w");'
                         f' if (f) fputs("preload", f); }} }}\n'.encode())
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o755 if path.is_dir() else 0o444))
    return root


@pytest.mark.parametrize("variables", [
    {"PYTHONPATH": "{e}"}, {"PYTHONHOME": "{e}"}, {"PYTHONSTARTUP": "{e}/os.py", "PYTHONINSPECT": "1"},
    {"PYTHONUSERBASE": "{e}"}, {"LD_PRELOAD": "{e}/evil.so"}, {"LD_LIBRARY_PATH": "{e}"}, {"LD_AUDIT": "{e}/evil.so"},
    {"PATH": "{e}:/usr/bin:/bin"}, {"HOME": "{e}"}, {"DOCKER_CONFIG": "{e}/.docker"},
    {"DOCKER_HOST": "tcp://127.0.0.1:9"}, {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "{e}"},
    {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9"},
    {"TMPDIR": "{e}"}, {"NUITKA_ONEFILE_PARENT": "1", "NUITKA_PACKAGE_HOME": "{e}"},
])
def test_hostile_environment_changes_nothing(variables, evil):
    env = {name: value.format(e=evil) for name, value in variables.items()}
    result = socker(ALICE, "run", IMAGE, "id", "-u", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == str(user(ALICE).pw_uid)
    assert not (evil / "PWNED").exists()


@pytest.mark.parametrize("directory", ["/etc", "/", "/usr", "/var/tmp", "/run/socker", "/proc/self", "/scratch2"])
def test_current_directory_outside_policy_is_not_mounted(directory):
    refused(run_as(ALICE, ["sh", "-c", f"cd {directory}; exec {SOCKER} run {IMAGE} true"]), "current directory")
    with_workdir = run_as(ALICE, ["sh", "-c", f"cd {directory}; exec {SOCKER} run -w /tmp {IMAGE} ls /etc"])
    assert with_workdir.returncode == 0, with_workdir.stderr
    assert b"debian_version" not in with_workdir.stdout  # the image's /etc, not the host's


def test_deleted_current_directory(alice_scratch):
    gone = alice_scratch / "gone"
    result = run_as(ALICE, ["sh", "-c", f"mkdir {gone} && cd {gone} && rmdir {gone} && {SOCKER} run {IMAGE} true"])
    refused(result, "current directory")


@pytest.mark.parametrize("redirect", ["<&-", ">&-", "2>&-", "<&- >&- 2>&-"])
def test_closed_standard_descriptors(redirect):
    marker = unique()
    result = run_as(ALICE, ["sh", "-c", f"{SOCKER} run {IMAGE} echo {marker} {redirect}; echo status=$?"])
    assert b"status=0" in result.stdout
    assert wait_for_audit(marker)
    assert Path("/etc/socker/socker.yaml").read_text().startswith("images:")  # not written through fd 1


def test_huge_argv_is_handled():
    words = [f"argument-{i:06d}" for i in range(60000)]  # about 1 MB
    result = socker(ALICE, "run", IMAGE, "sh", "-c", 'echo "$#"', "sh", *words)
    # Below the kernel's limit for exec, every word reaches the container (the audit record cuts them).
    assert (result.returncode, result.stdout) == (0, f"{len(words)}\n".encode()), result.stderr[-300:]


def test_huge_environment_value_is_handled():
    result = socker(ALICE, "run", "-e", "BIG", IMAGE, "sh", "-c", 'echo ${#BIG}', env={"BIG": "x" * 100000})
    assert result.returncode == 0 and result.stdout.decode().strip() == "100000"


def test_caller_cannot_signal_the_guardian():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo ready; sleep 600", stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        guardian = _children(proc.pid)
        assert len(guardian) == 1
        status = Path(f"/proc/{guardian[0]}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
        assert uids == ["0", "0", "0", "0"]
        result = run_as(ALICE, ["kill", "-KILL", str(guardian[0])])
        assert result.returncode != 0
        assert Path(f"/proc/{guardian[0]}").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_the_guardian_is_root_from_its_first_instruction():
    # Were it ever the caller's, even briefly, the caller could kill it and then socker,
    # leaving the container, its bind mounts and its state behind.
    seen = []
    for _ in range(5):
        proc = popen_socker(ALICE, "run", IMAGE, "true", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while proc.poll() is None:
                for child in _children(proc.pid):
                    seen += _uids(child)
        except (FileNotFoundError, ProcessLookupError):
            pass  # socker ended
        finally:
            proc.wait(timeout=30)
    assert seen, "the guardian was never seen"
    assert set(seen) == {("0", "0", "0", "0")}


def _uids(pid):
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):  # it has ended, or is ending
        return []
    return [tuple(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:])]


def test_socker_process_is_not_traceable_by_the_caller():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo ready; sleep 600", stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        result = run_as(ALICE, ["cat", f"/proc/{proc.pid}/environ"])
        assert result.returncode != 0 and result.stdout == b""
        status = Path(f"/proc/{proc.pid}/status").read_text()
        assert "NoNewPrivs:\t1" in status
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _children(pid):
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# ------------------------------------------------------------------ config and installation

def test_config_check_reports_a_group_writable_config(site_config):
    site_config(Path("/etc/socker/socker.yaml").read_text(), mode=0o664)
    result = socker(ALICE, "config", "check")
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert any("socker.yaml" in line and "writable by group or others" in line for line in lines)


def test_config_check_reports_a_replaced_file_in_the_distribution():
    victim = next(p for p in Path(os.path.realpath(SOCKER)).parent.rglob("*.so"))
    st = victim.stat()
    os.chown(victim, user(ALICE).pw_uid, st.st_gid)
    try:
        result = socker(ALICE, "config", "check")
        assert result.returncode == 1
        assert f"{victim}: file is owned by uid {user(ALICE).pw_uid}" in result.stdout.decode()
    finally:
        os.chown(victim, 0, st.st_gid)


def test_config_check_passes_on_the_installed_configuration():
    result = socker(ALICE, "config", "check")
    assert result.returncode == 0, result.stdout
    assert result.stdout.decode().strip() == "config check: ok"


def test_config_check_of_a_users_own_file_reads_as_the_user(alice_scratch):
    result = socker(ALICE, "config", "check", "/root/.bashrc")
    assert result.returncode == 1
    assert b"/root" in result.stdout  # refused: /root is not reachable for alice, and nothing of it is shown
    assert b"PS1" not in result.stdout and b"alias" not in result.stdout


def test_a_copy_of_the_binary_is_not_setuid_and_does_not_run_the_engine(public_dir):
    # The whole distribution, which anyone may read: the binary alone cannot even start.
    copy = public_dir / "socker"
    shutil.copytree(Path(os.path.realpath(SOCKER)).parent, copy, copy_function=shutil.copyfile)
    (copy / "socker").chmod(0o755)
    result = run_as(ALICE, [str(copy / "socker"), "run", IMAGE, "true"])
    # It runs as alice, and alice may not use the engine's socket.
    refused(result, "cannot talk to the Docker engine at /var/run/docker.sock", "Permission denied")
