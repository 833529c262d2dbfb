"""The container runs within the caller's own resource limits, and sees the job's memory limit as its own.

Sites set per-user limits (limits.conf; Slurm's PropagateResourceLimits carries them into jobs):
a container must not be a way around them. And programs that size themselves from their own
cgroup (the JVM, Go, .NET) must read there what binds them.
"""

import os
from pathlib import Path

from helpers import ALICE, IMAGE, SOCKER, run_as, sbatch, wait_job, user, unique

# The caller's limits before socker, as the reproduction set them.
LIMITS = "ulimit -u 300 -f 100 -t 30 -n 64 -v 4000000"


def limits_table(text):
    """/proc/PID/limits as {name: (soft, hard)}."""
    rows = {}
    for line in text.splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        rows[name] = (soft, hard)
    return rows


def as_alice_with_limits(*command, limits=LIMITS):
    script = f'{limits} && exec "$@"'
    return run_as(ALICE, ["bash", "-c", script, "bash", *command], timeout=120)


def test_the_container_has_the_callers_limits():
    host = as_alice_with_limits("cat", "/proc/self/limits")
    container = as_alice_with_limits(SOCKER, "run", IMAGE, "cat", "/proc/self/limits")
    assert container.returncode == 0, container.stderr
    expected, seen = limits_table(host.stdout.decode()), limits_table(container.stdout.decode())
    del expected["Max realtime timeout"], seen["Max realtime timeout"]  # RLIMIT_RTTIME: the engine cannot set it
    # A setuid program cannot know the caller's soft stack limit (the kernel resets it to 8 MiB):
    # the container gets the hard one, to which the caller could raise it anyway.
    expected["Max stack size"] = (expected["Max stack size"][1],) * 2
    assert seen == expected
    assert seen["Max processes"] == ("300", "300") and seen["Max open files"] == ("64", "64")
    assert seen["Max file size"] == (str(100 * 1024),) * 2 and seen["Max cpu time"] == ("30", "30")


def test_a_file_cannot_grow_past_the_callers_file_size_limit():
    path = f"{user(ALICE).pw_dir}/big-{unique()}"
    result = as_alice_with_limits(SOCKER, "run", IMAGE, "sh", "-c",
                                  f"dd if=/dev/zero of={path} bs=1024 count=5000 2>/dev/null; echo $?")
    try:
        assert os.path.getsize(path) <= 100 * 1024
        assert result.stdout.strip() != b"0"
    finally:
        os.unlink(path)


def test_what_hpc_codes_ask_of_the_job_reaches_the_container():
    """ulimit -s unlimited for Fortran stacks; a high memlock for RDMA: as the caller has them."""
    result = as_alice_with_limits(SOCKER, "run", IMAGE, "sh", "-c", "ulimit -s; ulimit -l",
                                  limits="ulimit -s unlimited && ulimit -l 64")
    assert (result.returncode, result.stdout.decode().split()) == (0, ["unlimited", "64"]), result.stderr


def test_the_job_memory_limit_is_the_containers_own():
    output = Path(user(ALICE).pw_dir) / f"limits-{unique()}.out"
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sh -c 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                        f"/sys/fs/cgroup/pids/pids.max'", "--mem=200M", "-t", "2", output=str(output))
    wait_job(job)
    try:
        assert output.read_text().split() == [str(200 << 20), "4096"], output.read_text()
    finally:
        output.unlink()
