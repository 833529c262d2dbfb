"""Confinement inside Slurm jobs: memory, CPUs, accounting, no escape window, ending, identity.

One suite for both cgroup layouts: on the host (cgroup v1, `make integration`) and in the
integration/vm guest (cgroup v2, `make check-v2`). The `cgroups` fixture says which layout is in
force and where its pieces lie (cgroup_layout.py); every test runs on both.
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, IMAGE, SOCKER, docker, job_containers, job_state, popen_socker, refused, run_as,
                     sbatch, socker, user, wait_job, wait_until)

HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1"  # touches a 300 MB buffer
DEFAULT_MEMORY_LIMIT = 2 << 30  # socker's limit outside jobs, in the test config (etc/socker.yaml's default)


@pytest.fixture
def output(alice_scratch):
    return alice_scratch / "job.out"


def run_job(name, script, output, *options, timeout=180):
    job = sbatch(name, script, *options, output=output)
    wait_job(job, timeout)
    return job, output.read_text()


def running_containers(job, count, timeout=90):
    """The IDs of the job's `count` containers, once they all run."""
    def running():
        ids = job_containers(job)
        states = [json.loads(docker("inspect", i))[0]["State"] for i in ids]
        return len(ids) == count and all(s["Running"] and s["Pid"] for s in states)
    assert wait_until(running, timeout=timeout, interval=0.5), \
        f"job {job} ({job_state(job)}): {len(job_containers(job))} container(s) running, expected {count}"
    return job_containers(job)


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


def test_container_lands_inside_the_job_under_its_limits(cgroups, output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", "-c", "1", output=output)
    try:
        container, = running_containers(job, 1)
        path = cgroups.container_cgroup(container)
        assert re.fullmatch(cgroups.container_pattern(job, "batch", 0), path), path
        assert cgroups.memory_limit(path) == 100 << 20
        assert cgroups.cpus(path) == cgroups.cpus(path.split("/step_batch/")[0])
    finally:
        cancel(job)


def test_cpu_time_is_accounted_to_the_step(cgroups, output):
    job = sbatch(ALICE, f"srun -n1 {SOCKER} run {IMAGE} timeout 30 sh -c 'while :; do :; done'",
                 "--mem=100M", "-c", "1", output=output)
    try:
        running_containers(job, 1)
        assert wait_until(lambda: cgroups.step_cpu_seconds(job, 0) >= 5, timeout=60, interval=1), \
            cgroups.step_cpu_seconds(job, 0)
    finally:
        cancel(job)


def test_scancel_removes_the_container(cgroups, output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=90)
    subprocess.run(["scancel", job], check=True)
    assert wait_until(lambda: not job_containers(job), timeout=30)  # KillWait (10 s) + slack
    wait_job(job, 60)
    assert wait_until(lambda: not cgroups.job_cgroup_dirs(job), timeout=30), _tree(cgroups.job_cgroup_dirs(job))
    assert not _user_processes(ALICE, "sleep")


def test_sigkill_of_the_whole_step_is_cleaned_by_the_epilog(cgroups, output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", output=output)
    assert wait_until(lambda: job_containers(job), timeout=90)
    # SIGKILL to every process of the batch step: socker and its guardian die at once.
    subprocess.run(["scancel", "--signal=KILL", "--batch", job], check=True)
    wait_job(job, 90)
    assert wait_until(lambda: not job_containers(job), timeout=30)
    assert wait_until(lambda: not cgroups.job_cgroup_dirs(job), timeout=30), _tree(cgroups.job_cgroup_dirs(job))


def test_time_limit_removes_the_container(cgroups, output):
    job = sbatch(ALICE, f"{SOCKER} run {IMAGE} sleep 600", "--mem=100M", "--time=1", output=output)
    assert wait_until(lambda: job_containers(job), timeout=90)
    wait_job(job, 180)
    # Slurm forgets an ended job within MinJobAge; what it wrote into the output stays.
    assert re.search(rf"\*\*\* JOB {job} ON \S+ CANCELLED AT \S+ DUE TO TIME LIMIT \*\*\*", output.read_text()), \
        output.read_text()
    assert wait_until(lambda: not job_containers(job), timeout=30)
    assert wait_until(lambda: not cgroups.job_cgroup_dirs(job), timeout=30), _tree(cgroups.job_cgroup_dirs(job))


def test_end_of_job_script_removes_a_background_container(cgroups, output):
    # The script ends once its container runs (it leaves a file in the shared directory).
    started = output.parent / "started"
    script = (f"{SOCKER} run -v {output.parent}:{output.parent} {IMAGE} sh -c 'touch {started}; exec sleep 600' & "
              f"while [ ! -e {started} ]; do sleep 0.1; done; echo done")
    job, text = run_job(ALICE, script, output, "--mem=100M", "--time=5")
    assert started.exists() and text.splitlines()[-1:] == ["done"], text
    assert wait_until(lambda: not job_containers(job), timeout=30)
    assert wait_until(lambda: not cgroups.job_cgroup_dirs(job), timeout=30), _tree(cgroups.job_cgroup_dirs(job))


def test_slurm_job_id_of_another_users_job_changes_nothing(cgroups, output):
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
            outside, = [cgroups.container_cgroup(c) for c in docker("ps", "-q", "--filter", label).split()]
            assert "slurm" not in outside and f"job_{bob_job}" not in outside, outside
            assert cgroups.memory_limit(outside) == DEFAULT_MEMORY_LIMIT
        finally:
            proc.terminate()
            proc.wait(60)
        # Inside alice's own job: alice's job, not bob's.
        job = sbatch(ALICE, f"SLURM_JOB_ID={bob_job} {SOCKER} run {IMAGE} sleep 600", "--mem=100M",
                     output=output)
        try:
            container, = running_containers(job, 1)
            inside = cgroups.container_cgroup(container)
            assert re.fullmatch(cgroups.container_pattern(job, "batch", 0), inside), inside
        finally:
            cancel(job)
    finally:
        subprocess.run(["scancel", bob_job], check=True)
        wait_job(bob_job, 60)


def test_outside_a_job_the_default_limits_apply(cgroups):
    # The container's own cgroup is what it sees at its /sys/fs/cgroup.
    result = socker(ALICE, "run", IMAGE, "cat", cgroups.memory_limit_in_container)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().strip() == str(DEFAULT_MEMORY_LIMIT)


def test_each_task_of_srun_has_its_own_container_inside_the_step(cgroups, output):
    script = f"srun -n 4 -O {SOCKER} run -e SLURM_PROCID {IMAGE} sleep 600"
    job = sbatch(ALICE, script, "-n", "4", "-O", "--mem=200M", output=output)
    try:
        containers = running_containers(job, 4, timeout=150)
        paths = [cgroups.container_cgroup(c) for c in containers]
        assert len(set(paths)) == 4, paths
        for container, path in zip(containers, paths):
            rank = _environment(container)["SLURM_PROCID"]
            assert re.fullmatch(cgroups.container_pattern(job, 0, rank), path), (rank, path)
            assert cgroups.memory_limit(path) == 200 << 20
        assert cgroups.task_cgroups(job, 0) == ["task_0", "task_1", "task_2", "task_3"]
    finally:
        cancel(job)
    assert wait_until(lambda: not cgroups.job_cgroup_dirs(job), timeout=30), _tree(cgroups.job_cgroup_dirs(job))


def _environment(container):
    return dict(entry.split("=", 1) for entry in json.loads(docker("inspect", container))[0]["Config"]["Env"])


def _tree(dirs):
    return [str(p) for d in dirs for p in Path(d).rglob("*") if p.is_dir()] or dirs


def _user_processes(name, command):
    out = subprocess.run(["pgrep", "-u", str(user(name).pw_uid), "-x", command], capture_output=True)
    return out.stdout.split()


# A job script that makes a cgroup of its own, task_7, below its step's in every hierarchy that lets
# it, moves itself there, and says where it went.
_MAKE_OWN_CGROUP = r"""
while IFS=: read -r _ controller path; do
  case "$controller:$path" in name=*|*:) continue ;; esac
  case "$path" in */step_*) ;; *) continue ;; esac
  step=${path%%/task_*}; step=${step%/user}
  dir=/sys/fs/cgroup${controller:+/$controller}$step/task_7
  mkdir "$dir" 2>/dev/null && echo $$ > "$dir/cgroup.procs" 2>/dev/null && echo "moved $dir"
done < /proc/self/cgroup
"""


def test_a_cgroup_the_user_made_inside_the_job_is_not_the_job(cgroups, output):
    """Slurm's cgroup/v1 gives the user its step and task directories, so a job can make a cgroup
    of its own there and move into it: a path of Slurm's layout that is not Slurm's (a step without
    GPUs so regains the batch step's; a process there outlives the job). socker refuses to run a
    container from it, in the job and after it. On cgroup v2 Slurm gives the user no such place."""
    script = output.parent / "escape.sh"
    script.write_text(_MAKE_OWN_CGROUP + f"cd && {SOCKER} run {IMAGE} true; echo rc=$?\n"
                      "setsid sleep 600 </dev/null >/dev/null 2>&1 &\n")
    job, text = run_job(ALICE, f"sh {script}", output, "--mem=100M")
    made = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("moved ")]
    try:
        if cgroups.version == 2:
            assert not made and "rc=0" in text.splitlines(), text
            return
        assert made and "rc=125" in text.splitlines(), text
        assert "socker: cgroup " in text and "not by the batch system" in text, text
        assert not job_containers(job)
        # The job is over; its sleep is still in the cgroups it made. Run socker from there.
        assert all(Path(d, "cgroup.procs").read_text().split() for d in made), made
        enter = " && ".join(f"echo $$ > {d}/cgroup.procs" for d in made)
        result = run_as(ALICE, ["sh", "-c", f"{enter} && exec {SOCKER} run {IMAGE} true"])
        refused(result, "not by the batch system")
        assert not job_containers(job)
        assert not [p for d in made for p in Path(d).iterdir() if p.is_dir()], made
    finally:
        _remove_cgroups_made_by(made, job, cgroups)


def _remove_cgroups_made_by(made, job, cgroups):
    """Kill what is left in the cgroups a job made, remove them, then the job's directories Slurm
    could not remove while they were there."""
    for directory in made:
        for pid in Path(directory, "cgroup.procs").read_text().split():
            subprocess.run(["kill", "-KILL", pid], check=False)
    for directory in made:
        assert wait_until(lambda: not Path(directory, "cgroup.procs").read_text().split(), timeout=10), directory
        os.rmdir(directory)
    for top in cgroups.job_cgroup_dirs(job):
        for directory in sorted((p for p in Path(top).rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            os.rmdir(directory)
        os.rmdir(top)
