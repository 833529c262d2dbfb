"""Confinement inside Slurm jobs on cgroup v2 (Slurm's cgroup/v2 plugin): run in the integration/vm guest.

The v1 suite (integration/test_slurm.py) reads the container's own /proc/self/cgroup and the
v1 hierarchies; on cgroup v2 the engine gives each container a private cgroup namespace, in
which /proc/self/cgroup is just "0::/". Where a container landed is therefore read from the
node: the container's init pid (docker inspect) and /proc/PID/cgroup. Slurm's v2 layout is
/system.slice/[<node>_]slurmstepd.scope/job_N/step_S/{slurm,user/task_T}; socker puts the container
beside the tasks, in step_S/user/<container id>.
"""

import functools
import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, IMAGE, SOCKER, docker, job_containers, job_state, popen_socker, sbatch, socker,
                      user, wait_job, wait_until)

HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1"  # touches a 300 MB buffer
CGROUP = Path("/sys/fs/cgroup")
CONTAINER = r"[0-9a-f]{64}"


@functools.cache
def scope_of_slurm():
    """Slurm's slurmstepd.scope: <node>_slurmstepd.scope when Slurm supports several slurmd per host (Debian)."""
    found = sorted(CGROUP.glob("**/*slurmstepd.scope"), key=lambda p: len(p.parts))
    assert found, "no slurmstepd.scope below /sys/fs/cgroup: is Slurm using cgroup/v2?"
    return found[0]


def job_cgroup_dirs(job_id):
    return [str(p) for p in scope_of_slurm().glob(f"job_{job_id}")]


def container_cgroup(container_id):
    """The v2 cgroup path of a running container's init, as the node sees it."""
    pid = json.loads(docker("inspect", container_id))[0]["State"]["Pid"]
    assert pid, f"container {container_id} is not running"
    text = Path(f"/proc/{pid}/cgroup").read_text()
    assert text.startswith("0::"), text
    return text.strip()[3:]


def running_cgroups(job_id, count, timeout=90):
    """The cgroups of `count` running containers of the job, once they all run."""
    def running():
        ids = job_containers(job_id)
        states = [json.loads(docker("inspect", i))[0]["State"] for i in ids]
        return len(ids) == count and all(s["Running"] and s["Pid"] for s in states)
    assert wait_until(running, timeout=timeout, interval=0.5), \
        f"job {job_id} ({job_state(job_id)}): {len(job_containers(job_id))} container(s) running, expected {count}"
    return [container_cgroup(c) for c in job_containers(job_id)]


def cgroup_file(path, name):
    return (CGROUP / path.lstrip("/") / name).read_text().strip()


def limit_above(path, name):
    """The tightest `name` (memory.max, pids.max) on `path` or any of its ancestors."""
    limits = []
    parts = Path(path.lstrip("/")).parts
    for depth in range(len(parts) + 1):
        f = CGROUP.joinpath(*parts[:depth]) / name
        if f.exists() and f.read_text().strip() != "max":
            limits.append(int(f.read_text()))
    return min(limits) if limits else None


@pytest.fixture
def output(alice_scratch):
    return alice_scratch / "job.out"


def run_job(name, script, output, *options, timeout=180):
    job = sbatch(name, script, *options, output=output)
    wait_job(job, timeout)
    return job, output.read_text()


def cancel(job):
    subprocess.run(["scancel", job], check=True)
    wait_job(job, 90)
    assert wait_until(lambda: not job_containers(job), timeout=30)


def test_memory_limit_kills_the_container_and_says_so(output):
    _, text = run_job(ALICE, f"{SOCKER} run {IMAGE} {HOG}; echo status=$?", output, "--mem=100M", "-c", "1")
    assert "status=137" in text, text
    assert "socker: the container was killed: the job's memory limit was reached" in text, text


def test_a_process_forked_at_once_is_bounded_too(output):
    script = f"{SOCKER} run {IMAGE} sh -c '{HOG} & wait $!; echo hog=$?'; echo status=$?"
    _, text = run_job(ALICE, script, output, "--mem=100M", "-c", "1")
    assert "hog=137" in text, text
    assert "hog=0" not in text


def test_cpus_are_the_jobs(output):
    script = (f"grep Cpus_allowed_list /proc/self/status; "
              f"{SOCKER} run {IMAGE} sh -c 'nproc; grep Cpus_allowed_list /proc/self/status'")
    _, text = run_job(ALICE, script, output, "--mem=100M", "-c", "1")
    host_cpus, container_nproc, container_cpus = text.splitlines()[:3]
    assert container_nproc == "1", text
    assert container_cpus == host_cpus, text


def test_container_lands_beside_the_task_and_inside_the_job(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", "-c", "1", output=output)
    try:
        path, = running_cgroups(job, 1)
        assert re.fullmatch(rf"/(?:[^/]+/)*[^/]*slurmstepd\.scope/job_{job}/step_batch/user/{CONTAINER}", path), path
        # The job's limits bind it: memory from an ancestor, CPUs from the job's cpuset.
        assert limit_above(path, "memory.max") == 100 << 20
        assert cgroup_file(path, "memory.swap.max") in ("0", "max")
        job_dir = path.split("/step_batch/")[0]
        assert cgroup_file(path, "cpuset.cpus.effective") == cgroup_file(job_dir, "cpuset.cpus.effective")
        assert "memory" in cgroup_file(path, "cgroup.controllers").split()
    finally:
        cancel(job)


def test_cpu_time_is_accounted_to_the_steps_cgroup(output):
    # Slurm 22.05 on cgroup v2 reads sstat and sacct from task_<n>'s cgroup, and the container
    # lies beside it (v2 allows none below a cgroup that holds processes): the kernel's account
    # of the step, which holds the container, is what counts its CPU time (README).
    job = sbatch(ALICE, f"srun -n1 {SOCKER} run {IMAGE} timeout 30 sh -c 'while :; do :; done'",
                 "--mem=100M", "-c", "1", output=output)
    try:
        path, = running_cgroups(job, 1)
        step = path.rsplit("/user/", 1)[0]
        assert step.endswith(f"/job_{job}/step_0"), path

        def usage_seconds():
            stat = dict(line.split() for line in cgroup_file(step, "cpu.stat").splitlines())
            return int(stat["usage_usec"]) / 1e6
        assert wait_until(lambda: usage_seconds() >= 5, timeout=60, interval=1), usage_seconds()
    finally:
        cancel(job)


def test_scancel_removes_the_container(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=90)
    subprocess.run(["scancel", job], check=True)
    assert wait_until(lambda: not job_containers(job), timeout=30)  # KillWait (10 s) + slack
    wait_job(job, 60)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=30), _tree(job_cgroup_dirs(job))
    assert not _user_processes(ALICE, "sleep")


def test_sigkill_of_the_whole_step_is_cleaned_by_the_epilog(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=90)
    subprocess.run(["scancel", "--signal=KILL", "--batch", job], check=True)
    wait_job(job, 90)
    assert wait_until(lambda: not job_containers(job), timeout=30)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=30), _tree(job_cgroup_dirs(job))


def test_end_of_job_script_removes_a_background_container(output):
    job, _ = run_job(ALICE, f"{SOCKER} run {IMAGE} sleep 600 & sleep 10; echo done", output, "--mem=100M")
    assert wait_until(lambda: not job_containers(job), timeout=30)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=30), _tree(job_cgroup_dirs(job))


def test_slurm_job_id_of_another_users_job_changes_nothing(output):
    bob_job = sbatch(BOB, "sleep 300", "--mem=50M", output=f"/scratch/{BOB}/job.out")
    try:
        assert wait_until(lambda: job_state(bob_job) == "RUNNING", timeout=90)
        spoof = {"SLURM_JOB_ID": bob_job, "SLURM_JOBID": bob_job, "SLURM_STEP_ID": "0"}
        # Outside any job: the engine's default place and socker's default limits.
        proc = popen_socker(ALICE, "run", IMAGE, "sleep", "600", env=spoof,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            label = f"label=socker.uid={user(ALICE).pw_uid}"
            assert wait_until(lambda: docker("ps", "-q", "--filter", label).split(), timeout=60)
            outside, = [container_cgroup(c) for c in docker("ps", "-q", "--filter", label).split()]
            assert "slurmstepd" not in outside and f"job_{bob_job}" not in outside, outside
            assert cgroup_file(outside, "memory.max") == str(2 << 30)
        finally:
            proc.terminate()
            proc.wait(60)
        # Inside alice's own job: alice's job, not bob's.
        job = sbatch(ALICE, f"SLURM_JOB_ID={bob_job} {SOCKER} run {IMAGE} sleep 600", "--mem=100M",
                     output=output)
        try:
            inside, = running_cgroups(job, 1)
            assert f"/job_{job}/step_batch/user/" in inside, inside
            assert f"job_{bob_job}/" not in inside
        finally:
            cancel(job)
    finally:
        subprocess.run(["scancel", bob_job], check=True)
        wait_job(bob_job, 60)


def test_outside_a_job_the_default_limits_apply():
    # The container has its own cgroup namespace: its cgroup is the root of its /sys/fs/cgroup.
    result = socker(ALICE, "run", IMAGE, "cat", "/sys/fs/cgroup/memory.max")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == str(2 << 30)


def test_each_task_of_srun_has_its_own_container_inside_the_step(output):
    script = f"srun -n 4 -O {SOCKER} run -e SLURM_PROCID {IMAGE} sleep 600"
    job = sbatch(ALICE, script, "-n", "4", "-O", "--mem=200M", output=output)
    try:
        paths = running_cgroups(job, 4, timeout=150)
        assert len(set(paths)) == 4, paths
        for path in paths:
            assert re.fullmatch(rf"/(?:[^/]+/)*[^/]*slurmstepd\.scope/job_{job}/step_0/user/{CONTAINER}", path), path
            assert limit_above(path, "memory.max") == 200 << 20
        # Four tasks of the step besides the containers: task_0..task_3, each with its srun'd socker.
        user_dir = CGROUP / paths[0].lstrip("/") / ".."
        tasks = sorted(p.name for p in user_dir.resolve().iterdir() if p.name.startswith("task_"))
        assert tasks == ["task_0", "task_1", "task_2", "task_3"], tasks
    finally:
        cancel(job)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=30), _tree(job_cgroup_dirs(job))


def _tree(dirs):
    return [str(p) for d in dirs for p in Path(d).rglob("*") if p.is_dir()] or dirs


def _user_processes(name, command):
    out = subprocess.run(["pgrep", "-u", str(user(name).pw_uid), "-x", command], capture_output=True)
    return out.stdout.split()
