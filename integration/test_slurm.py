"""Confinement inside Slurm jobs: memory, CPUs, accounting, no escape window, ending, identity."""

import re
import subprocess

import pytest

from helpers import (ALICE, BOB, IMAGE, SOCKER, job_cgroup_dirs, job_containers, job_state, sbatch, socker, user,
                      wait_job, wait_until)

HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1"  # touches a 300 MB buffer


@pytest.fixture
def output(alice_scratch):
    path = alice_scratch / "job.out"
    yield path


def run_job(name, script, output, *options, timeout=120):
    job = sbatch(name, script, *options, output=output)
    wait_job(job, timeout)
    return job, output.read_text()


def test_memory_limit_kills_the_container_and_says_so(output):
    _, text = run_job(ALICE, f"{SOCKER} run {IMAGE} {HOG}; echo status=$?", output, "--mem=100M", "-c", "1")
    assert "status=137" in text
    assert "socker: the container was killed: the job's memory limit was reached" in text


def test_a_process_forked_at_once_is_bounded_too(output):
    script = f"{SOCKER} run {IMAGE} sh -c '{HOG} & wait $!; echo hog=$?'; echo status=$?"
    _, text = run_job(ALICE, script, output, "--mem=100M", "-c", "1")
    assert "hog=137" in text
    assert "hog=0" not in text


def test_cpus_are_the_jobs(output):
    script = (f"grep Cpus_allowed_list /proc/self/status; "
              f"{SOCKER} run {IMAGE} sh -c 'nproc; grep Cpus_allowed_list /proc/self/status'")
    _, text = run_job(ALICE, script, output, "--mem=100M", "-c", "1")
    host_cpus, container_nproc, container_cpus = text.splitlines()[:3]
    assert container_nproc == "1"
    assert container_cpus == host_cpus


def test_container_lands_in_the_task_cgroup(output):
    _, text = run_job(ALICE, f"{SOCKER} run {IMAGE} cat /proc/self/cgroup", output, "--mem=100M")
    memory = next(line for line in text.splitlines() if ":memory:" in line)
    uid = user(ALICE).pw_uid
    assert re.search(rf":memory:/slurm_[^/]+/uid_{uid}/job_\d+/step_batch/task_0/[0-9a-f]{{64}}$", memory)


def test_cpu_time_is_accounted_to_the_step(output):
    script = (f"srun -n1 {SOCKER} run {IMAGE} timeout 25 sh -c 'while :; do :; done' & "
              "sleep 15; sstat -n -P -j $SLURM_JOB_ID.0 -o TRESUsageInTot; wait")
    _, text = run_job(ALICE, script, output, "--mem=100M", "-c", "1")
    cpu = re.search(r"cpu=(\d+):(\d+):(\d+)", text)
    assert cpu, text
    hours, minutes, seconds = map(int, cpu.groups())
    assert hours * 3600 + minutes * 60 + seconds >= 5


def test_scancel_removes_the_container(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=60)
    subprocess.run(["scancel", job], check=True)
    assert wait_until(lambda: not job_containers(job), timeout=20)  # KillWait (10 s) + 10 s
    wait_job(job, 30)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=20), job_cgroup_dirs(job)
    assert not _user_processes(ALICE, "sleep")


def test_sigkill_of_the_whole_step_is_cleaned_by_the_epilog(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=60)
    # SIGKILL to every process of the batch step: socker and its guardian die at once.
    subprocess.run(["scancel", "--signal=KILL", "--batch", job], check=True)
    wait_job(job, 60)
    assert wait_until(lambda: not job_containers(job), timeout=20)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=20), job_cgroup_dirs(job)


def test_time_limit_removes_the_container(output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", "--time=1", output=output)
    assert wait_until(lambda: job_containers(job), timeout=60)
    wait_job(job, 150)
    assert job_state(job) in ("TIMEOUT", "GONE")
    assert wait_until(lambda: not job_containers(job), timeout=20)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=20)


def test_end_of_job_script_removes_a_background_container(output):
    job, _ = run_job(ALICE, f"{SOCKER} run {IMAGE} sleep 600 & sleep 5; echo done", output, "--mem=100M")
    assert wait_until(lambda: not job_containers(job), timeout=20)
    assert wait_until(lambda: not job_cgroup_dirs(job), timeout=20)


def test_slurm_job_id_of_another_users_job_changes_nothing(output):
    bob_out = f"/scratch/{BOB}/job.out"
    bob_job = sbatch(BOB, "sleep 300", "--mem=50M", output=bob_out)
    try:
        assert wait_until(lambda: job_state(bob_job) == "RUNNING", timeout=60)
        spoof = {"SLURM_JOB_ID": bob_job, "SLURM_JOBID": bob_job, "SLURM_STEP_ID": "0"}
        outside = socker(ALICE, "run", IMAGE, "cat", "/proc/self/cgroup", env=spoof)
        assert outside.returncode == 0, outside.stderr
        assert f"job_{bob_job}" not in outside.stdout.decode()
        _, inside = run_job(ALICE, f"SLURM_JOB_ID={bob_job} {SOCKER} run {IMAGE} cat /proc/self/cgroup",
                            output, "--mem=100M")
        assert f"job_{bob_job}/" not in inside
        assert re.search(rf"uid_{user(ALICE).pw_uid}/job_\d+/", inside)
    finally:
        subprocess.run(["scancel", bob_job], check=True)
        wait_job(bob_job, 60)


def test_outside_a_job_the_default_limits_apply():
    result = socker(ALICE, "run", IMAGE, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert result.stdout.decode().strip() == str(2 << 30)


def test_each_task_of_srun_has_its_own_cgroup(output):
    script = (f"srun -n 4 -O {SOCKER} run -e SLURM_PROCID {IMAGE} "
              "sh -c 'echo $SLURM_PROCID $(grep :memory: /proc/self/cgroup)'")
    _, text = run_job(ALICE, script, output, "-n", "4", "-O", "--mem=200M")
    lines = sorted(line for line in text.splitlines() if ":memory:" in line)
    assert len(lines) == 4, text
    for line in lines:
        procid, path = line.split(" ", 1)
        assert re.search(rf"/step_0/task_{procid}/[0-9a-f]{{64}}$", path), line


def _user_processes(name, command):
    out = subprocess.run(["pgrep", "-u", str(user(name).pw_uid), "-x", command], capture_output=True)
    return out.stdout.split()
