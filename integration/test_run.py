"""`socker run` as an unprivileged user: identity, exit status, streams, signals, cleanup, audit."""

import grp
import os
import select
import shlex
import signal
import subprocess

import pytest

from helpers import (ALICE, BOB, ENTRYPOINT_IMAGE, IMAGE, ROOTUSER_IMAGE, SOCKER, STATE_DIR, docker, popen_socker,
                     run_as, socker, socker_containers, unique, user, wait_for_audit, wait_until)


def test_installed_setuid_root():
    st = os.lstat(os.path.realpath(SOCKER))
    assert st.st_uid == 0 and st.st_gid == 0
    assert st.st_mode & 0o7777 == 0o4755


def test_runs_as_the_caller():
    alice = user(ALICE)
    result = socker(ALICE, "run", IMAGE, "sh", "-c", 'id -u; id -g; whoami; id -un; echo "$USER $HOME"')
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [
        str(alice.pw_uid), str(alice.pw_gid), ALICE, ALICE, f"{ALICE} {alice.pw_dir}"]


def test_supplementary_groups_resolve():
    lab = grp.getgrnam("socker-lab")
    result = socker(BOB, "run", IMAGE, "sh", "-c", "id -G; id -Gn")
    assert result.returncode == 0, result.stderr
    gids, names = result.stdout.decode().splitlines()
    assert str(lab.gr_gid) in gids.split()
    assert "socker-lab" in names.split()
    alice = socker(ALICE, "run", IMAGE, "id", "-G")
    assert alice.stdout.decode().split() == [str(user(ALICE).pw_gid)]


def test_image_user_root_is_ignored():
    result = socker(ALICE, "run", ROOTUSER_IMAGE, "id", "-u")
    assert result.stdout.decode().strip() == str(user(ALICE).pw_uid)


def test_an_images_anonymous_volume_goes_with_its_container():
    before = set(docker("volume", "ls", "-q").split())
    result = socker(ALICE, "run", ROOTUSER_IMAGE, "sh", "-c", "grep -c ' /var/lib/data ' /proc/self/mounts")
    assert result.returncode == 0 and result.stdout == b"1\n", result
    assert set(docker("volume", "ls", "-q").split()) == before


def test_the_images_entrypoint_runs_with_its_default_command_or_the_callers():
    # socker puts its socker-chdir before the entrypoint, which makes the engine forget the CMD.
    default = socker(ALICE, "run", ENTRYPOINT_IMAGE)
    assert (default.returncode, default.stdout) == (0, b"from the entrypoint: the default command\n"), default
    given = socker(ALICE, "run", ENTRYPOINT_IMAGE, "x", "y")
    assert (given.returncode, given.stdout) == (0, b"from the entrypoint: x y\n"), given


def test_setuid_file_in_image_gives_no_root():
    alice = str(user(ALICE).pw_uid)
    # The image's /bin/suid-busybox is setuid root: without no-new-privileges `id -u` would print 0.
    direct = socker(ALICE, "run", ROOTUSER_IMAGE, "sh", "-c", "exec -a id /bin/suid-busybox -u")
    assert direct.stdout.decode().split() == [alice], direct.stderr
    su = socker(ALICE, "run", ROOTUSER_IMAGE, "sh", "-c", "exec -a su /bin/suid-busybox -c 'id -u'")
    # busybox's su, which needs root to switch, says so and ends with 1: the container's status, not socker's.
    assert (su.returncode, su.stdout) == (1, b""), su
    assert b"su: must be suid to work properly" in su.stderr, su.stderr


def test_no_capabilities_and_no_new_privileges():
    result = socker(ALICE, "run", IMAGE, "grep", "-E", "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)",
                    "/proc/self/status")
    fields = dict(line.split(":\t") for line in result.stdout.decode().splitlines())
    assert {k: v for k, v in fields.items() if k.startswith("Cap")} == {
        k: "0000000000000000" for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    assert fields["NoNewPrivs"] == "1"


def test_no_devices_beyond_the_defaults():
    result = socker(ALICE, "run", IMAGE, "ls", "/dev")
    assert result.returncode == 0, result.stderr
    devices = set(result.stdout.decode().split())
    assert {"null", "zero", "urandom"} <= devices
    assert devices <= {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random",
                       "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}


def test_exit_status_is_the_containers():
    assert socker(ALICE, "run", IMAGE, "sh", "-c", "exit 42").returncode == 42
    assert socker(ALICE, "run", IMAGE, "true").returncode == 0


def test_command_not_found_is_127_and_not_executable_is_126():
    assert socker(ALICE, "run", IMAGE, "no-such-command").returncode == 127
    assert socker(ALICE, "run", IMAGE, "/etc/hostname").returncode == 126


def test_home_and_current_directory_are_mounted(alice_scratch):
    marker = unique()
    result = socker(ALICE, "run", IMAGE, "sh", "-c", f"pwd; echo {marker} > here", cwd=alice_scratch)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == str(alice_scratch)
    written = alice_scratch / "here"
    assert written.read_text().strip() == marker
    assert written.stat().st_uid == user(ALICE).pw_uid
    home = socker(ALICE, "run", IMAGE, "ls", "-d", user(ALICE).pw_dir)
    assert home.returncode == 0


def test_stdout_and_stderr_are_byte_exact_and_apart(alice_scratch):
    script = ("head -c 1048576 /dev/urandom > out.bin; head -c 70000 /dev/urandom > err.bin; "
              "cat out.bin; cat err.bin >&2")
    result = socker(ALICE, "run", IMAGE, "sh", "-c", script, cwd=alice_scratch)
    assert result.returncode == 0
    assert result.stdout == (alice_scratch / "out.bin").read_bytes()
    assert result.stderr == (alice_scratch / "err.bin").read_bytes()


def test_output_streams_while_the_container_runs():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo first; sleep 30; echo second",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "no output while the container runs"
        assert proc.stdout.readline() == b"first\n"
        assert proc.poll() is None
        assert len(socker_containers()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_stdin_is_forwarded_with_i():
    result = socker(ALICE, "run", "-i", IMAGE, "cat", input=b"hi\n")
    assert result.stdout == b"hi\n"
    data = os.urandom(3 * 1024 * 1024)
    big = socker(ALICE, "run", "--interactive", IMAGE, "cat", input=data)
    assert big.returncode == 0 and big.stdout == data


def test_stdin_is_not_forwarded_without_i():
    result = socker(ALICE, "run", IMAGE, "cat", input=b"secret\n")
    assert result.returncode == 0 and result.stdout == b""


def test_tty_gives_the_container_a_terminal_of_the_callers_size_that_follows_a_resize():
    # The container prints its terminal, then its terminal's size for each line it reads.
    script = "tty; while read line; do stty size; done"
    with Terminal(ALICE, 100, 30, [SOCKER, "run", "-it", IMAGE, "sh", "-c", script]) as terminal:
        terminal.wait_for_lines(1)
        assert terminal.lines()[0].startswith("/dev/pts/"), terminal.lines()
        assert terminal.size_seen_after_a_line() == "30 100" == terminal.size()
        terminal.resize(120, 40)
        assert terminal.size() == "40 120"
        # SIGWINCH to socker, socker to the engine, the engine to the container's terminal.
        assert wait_until(lambda: terminal.size_seen_after_a_line() == "40 120", timeout=10, interval=1), \
            terminal.lines()
        terminal.type("C-d")
        assert terminal.exit_status() == 0, terminal.lines()


def test_tty_the_containers_first_command_sees_the_callers_terminal_size():
    # Each start, not most: the size must be set before the container's first instruction.
    sizes = []
    for _ in range(5):
        with Terminal(ALICE, 100, 30, [SOCKER, "run", "-it", IMAGE, "stty", "size"]) as terminal:
            status = terminal.exit_status()
            sizes.append((status, terminal.lines()[0]))
    assert sizes == [(0, "30 100")] * 5


class Terminal:
    """A command run as `name` in a tmux window of a given size: a real pseudo-terminal, resizable."""

    def __init__(self, name, columns, rows, command):
        self.name, self.server = name, f"socker-test-{unique()}"
        # No configuration of the user's. The window stays once the command has ended, with its status.
        in_window = ["sh", "-c", '"$@"; echo "exit status $?"; read line', "sh", *command]
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", "test", "-x", str(columns), "-y", str(rows),
                  shlex.join(in_window))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.tmux("kill-server")

    def tmux(self, *args):
        result = run_as(self.name, ["tmux", "-L", self.server, *args])
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout.decode()

    def lines(self):
        return self.tmux("capture-pane", "-p", "-t", "test").rstrip("\n").splitlines()

    def wait_for_lines(self, count):
        assert wait_until(lambda: len(self.lines()) >= count, timeout=30), self.lines()

    def size(self):
        return self.tmux("display-message", "-p", "-t", "test", "#{pane_height} #{pane_width}").strip()

    def resize(self, columns, rows):
        self.tmux("resize-window", "-t", "test", "-x", str(columns), "-y", str(rows))

    def type(self, key):
        self.tmux("send-keys", "-t", "test", key)

    def size_seen_after_a_line(self):
        """Type an empty line; the line the command prints then (after the line's echo)."""
        count = len(self.lines())
        self.type("Enter")
        self.wait_for_lines(count + 2)
        return self.lines()[-1]

    def exit_status(self):
        """The command's exit status, once it has ended; its own lines are the ones before."""
        assert wait_until(lambda: self.lines()[-1:] and self.lines()[-1].startswith("exit status "), timeout=30), \
            self.lines()
        return int(self.lines()[-1].split()[-1])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2])
def test_signals_reach_the_container(sig):
    name = signal.Signals(sig).name[3:]
    script = f'trap "echo caught {name}; exit 7" {name}; echo ready; while :; do sleep 0.1; done'
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", script, stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert out == f"caught {name}\n".encode()
    assert proc.returncode == 7


def _callers_signals(ignored=(), blocked=()):
    """A preexec_fn: the dispositions and mask a caller may leave to what it executes (both survive exec)."""
    def prepare():
        for sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    return prepare


def test_a_caller_that_ignores_child_signals_gets_the_containers_status_and_nothing_left():
    result = socker(ALICE, "run", IMAGE, "sh", "-c", "echo ran; exit 3",
                    preexec_fn=_callers_signals(ignored=[signal.SIGCHLD]))
    assert (result.returncode, result.stdout, result.stderr) == (3, b"ran\n", b"")
    assert wait_until(lambda: not socker_containers() and not any(STATE_DIR.glob("socker-*")), timeout=15)


def test_signals_the_caller_blocked_still_reach_the_container():
    script = 'trap "echo caught TERM; exit 7" TERM; echo ready; while :; do sleep 0.1; done'
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", script, stdout=subprocess.PIPE,
                        preexec_fn=_callers_signals(blocked=[signal.SIGTERM, signal.SIGCHLD]))
    assert proc.stdout.readline() == b"ready\n"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert (out, proc.returncode) == (b"caught TERM\n", 7)


def test_sigkill_of_socker_leaves_no_container():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo ready; sleep 600", stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    assert len(socker_containers()) == 1
    proc.kill()
    proc.wait(timeout=10)
    assert wait_until(lambda: not socker_containers(), timeout=10)
    assert wait_until(lambda: not any(STATE_DIR.glob("socker-*")), timeout=10)
    assert not _container_processes()


def _container_processes():
    out = subprocess.run(["pgrep", "-u", str(user(ALICE).pw_uid), "-x", "sleep"], capture_output=True)
    return out.stdout.split()


def test_broken_pipe_ends_the_container():
    result = run_as(ALICE, ["bash", "-c", f"{SOCKER} run {IMAGE} yes | head -n 2; echo status=${{PIPESTATUS[0]}}"],
                    timeout=60)
    # socker ends as a pipeline's writer does (141: SIGPIPE), with nothing on stderr, and the
    # container with it (the fixture waits for it to be gone).
    assert (result.stdout, result.stderr) == (b"y\ny\nstatus=141\n", b""), result


def test_audit_record_for_each_run():
    marker = unique()
    alice = user(ALICE)
    result = socker(ALICE, "run", IMAGE, "sh", "-c", f"echo {marker}; exit 3")
    assert result.returncode == 3
    image_id = docker("image", "inspect", "-f", "{{.Id}}", IMAGE).strip()
    assert wait_until(lambda: len(wait_for_audit(marker)) == 2, timeout=10)
    created, ended = wait_for_audit(marker)
    for line, result_fields in ((created, ("result=created",)), (ended, ("result=exited", "status=3"))):
        for field in (f"user={ALICE}", f"uid={alice.pw_uid}", f"image={IMAGE}", f"image_id={image_id}",
                      "container=", *result_fields):
            assert field in line


def test_audit_record_for_a_refusal():
    marker = unique()
    result = socker(ALICE, "run", "socker-test/forbidden:latest", "echo", marker)
    assert result.returncode == 125
    [line] = wait_for_audit(marker)
    assert "result=refused" in line and f"user={ALICE}" in line


@pytest.mark.parametrize("arguments", [["run", "--privileged", IMAGE], ["run", "--cap-add=SYS_ADMIN", IMAGE],
                                       ["frobnicate"]])
def test_audit_record_for_arguments_refused_before_any_request(arguments):
    marker = unique()
    result = socker(ALICE, *arguments, "echo", marker)
    assert result.returncode == 125
    assert not socker_containers()
    [line] = wait_for_audit(marker)
    assert "result=refused" in line and f"user={ALICE}" in line and "reason=" in line


def test_images_lists_what_is_allowed_and_present():
    result = socker(ALICE, "images")
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.decode().splitlines()[1:]}
    assert rows == {IMAGE: "present", ROOTUSER_IMAGE: "present", ENTRYPOINT_IMAGE: "present",
                    "socker-test/absent:latest": "absent"}  # no registry is listed: nothing is pullable


def test_version_shows_socker_and_engine():
    result = socker(ALICE, "--version")
    assert result.returncode == 0, result.stderr
    engine_version = docker("version", "-f", "{{.Server.Version}}").strip()
    socker_line, engine_line = result.stdout.decode().splitlines()
    assert socker_line.startswith("socker ")
    assert engine_line.startswith(f"engine {engine_version} ")


def test_help():
    result = socker(ALICE, "--help")
    assert result.returncode == 0
    assert b"socker run" not in result.stderr and b"run [OPTIONS] IMAGE" in result.stdout


def test_container_is_named_and_labelled_for_the_caller():
    proc = popen_socker(ALICE, "run", IMAGE, "sh", "-c", "echo ready; sleep 600", stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"ready\n"
        [cid] = socker_containers()
        fmt = '{{.Name}} {{index .Config.Labels "socker.uid"}} {{.HostConfig.Privileged}} {{.Config.User}}'
        name, uid, privileged, container_user = docker("inspect", "-f", fmt, cid).split()
        alice = user(ALICE)
        assert name.startswith(f"/socker-{alice.pw_uid}-")
        assert uid == str(alice.pw_uid) and privileged == "false"
        assert container_user == f"{alice.pw_uid}:{alice.pw_gid}"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
