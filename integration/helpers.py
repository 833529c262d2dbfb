"""What the integration tests share: the installed socker run as the test users, the engine, Slurm.

Every socker invocation runs as socker-alice or socker-bob through setpriv, with a clean
environment unless a test says otherwise. The tests run as root (they install configs and
inspect the engine), after integration/up and packaging/install.
"""

import os
import pwd
import subprocess
import time
import uuid
from pathlib import Path

SOCKER = "/usr/local/bin/socker"
CONFIG = Path("/etc/socker/socker.yaml")
IMAGE = "socker-test/busybox:latest"
ROOTUSER_IMAGE = "socker-test/rootuser:latest"
ENTRYPOINT_IMAGE = "socker-test/entrypoint:latest"
FORBIDDEN_IMAGE = "socker-test/forbidden:latest"
ABSENT_IMAGE = "socker-test/absent:latest"
ALICE, BOB = "socker-alice", "socker-bob"
STATE_DIR = Path("/run/socker")
AUTH_LOG = Path("/var/log/auth.log")

TEST_CONFIG = f"""\
images:
  - {IMAGE}
  - {ROOTUSER_IMAGE}
  - {ENTRYPOINT_IMAGE}
  - {ABSENT_IMAGE}
volumes:
  - /scratch
network: none
audit:
  facility: authpriv
"""
USER_PATH = "/usr/local/bin:/usr/bin:/bin"


def user(name):
    return pwd.getpwnam(name)


def _as_user(name, args, cwd, env):
    """argv, cwd and environment to run `args` as `name`: setpriv execs, so the pid is the command's."""
    entry = user(name)
    environment = {"PATH": USER_PATH, "HOME": entry.pw_dir, "USER": name, "LANG": "C.UTF-8"}
    environment.update(env or {})
    argv = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", *args]
    return argv, cwd or entry.pw_dir, environment


def run_as(name, args, *, cwd=None, env=None, timeout=60, **kwargs):
    """Run `args` as user `name` with a clean environment; returns CompletedProcess (bytes)."""
    argv, cwd, environment = _as_user(name, args, cwd, env)
    return subprocess.run(argv, cwd=cwd, env=environment, timeout=timeout, capture_output=True, **kwargs)


def socker(name, *args, **kwargs):
    return run_as(name, [SOCKER, *args], **kwargs)


def popen_socker(name, *args, cwd=None, env=None, **kwargs):
    """Start socker as `name`; the Popen's pid is socker's own."""
    argv, cwd, environment = _as_user(name, [SOCKER, *args], cwd, env)
    return subprocess.Popen(argv, cwd=cwd, env=environment, **kwargs)


def refused(result, *phrases):
    """socker said no: status 125, one line on stderr naming the problem, nothing on stdout, no container."""
    assert result.returncode == 125, (result.returncode, result.stdout, result.stderr)
    message = result.stderr.decode()
    assert message.startswith("socker: ") and message.count("\n") == 1, message
    for phrase in phrases:
        assert phrase in message, message
    assert result.stdout == b""
    assert not socker_containers()
    return message


def docker(*args):
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def socker_containers():
    """IDs of every container socker created, running or not."""
    return docker("ps", "-aq", "--filter", "label=socker").split()


def wait_until(predicate, timeout, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def write_config(text, mode=0o644):
    CONFIG.parent.mkdir(mode=0o755, exist_ok=True)
    CONFIG.write_text(text)
    os.chown(CONFIG, 0, 0)
    os.chmod(CONFIG, mode)


def auth_log_lines(marker):
    return [line for line in AUTH_LOG.read_text(errors="replace").splitlines()
            if "socker[" in line and marker in line]


def wait_for_audit(marker, timeout=10):
    """The audit records whose command contains `marker` (rsyslog writes asynchronously)."""
    wait_until(lambda: auth_log_lines(marker), timeout)
    return auth_log_lines(marker)


def unique():
    return uuid.uuid4().hex[:12]


# ------------------------------------------------------------------ Slurm

FINISHED_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"}


def sbatch(name, script, *options, output):
    """Submit `script` (a shell command line) as user `name`; returns the job id."""
    result = run_as(name, ["sbatch", "--parsable", "-o", str(output), *options, "--wrap", script])
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip().split(";")[0]


def job_state(job_id):
    """The job's state: GONE once Slurm has forgotten it (MinJobAge), UNKNOWN while scontrol cannot say."""
    result = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True)
    if result.returncode != 0:  # a busy or restarting slurmctld is not a job that has ended
        return "GONE" if "Invalid job id" in result.stderr else "UNKNOWN"
    for field in result.stdout.split():
        if field.startswith("JobState="):
            return field.split("=", 1)[1]
    return "UNKNOWN"


def wait_job(job_id, timeout=120):
    assert wait_until(lambda: job_state(job_id) in FINISHED_STATES | {"GONE"}, timeout, interval=0.5), \
        f"job {job_id} still {job_state(job_id)}"


def job_containers(job_id):
    return docker("ps", "-aq", "--filter", "label=socker", "--filter", f"label=socker.job={job_id}").split()
