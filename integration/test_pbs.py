"""socker in OpenPBS jobs, confined by PBS's own cgroups hook (integration/pbs/up).

Job scripts are submitted with qsub as socker-alice; where a container ran is read from the
node (/proc/PID/cgroup of its init), what PBS counted from `qstat -x -f`. PBS's cgroups hook
puts a job in /pbs_jobs.service/jobid/<job id> of the memory, cpuset, cpuacct and devices
hierarchies (cgroup v1).
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

from helpers import (ALICE, BOB, IMAGE, SOCKER, STATE_DIR, docker, job_containers, popen_socker, run_as, user,
                     wait_until)
from test_mpi import ALLREDUCE, MPI_ENVIRONMENT, MPI_IMAGE, mpi_policy  # noqa: F401 (a fixture)

PBS_BIN = Path("/opt/pbs/bin")
HOG = "dd if=/dev/zero of=/dev/null bs=300M count=1"  # touches a 300 MB buffer
JOB_CGROUP = "/pbs_jobs.service/jobid/{job}"
CONTAINER = r"[0-9a-f]{64}"



@pytest.fixture(autouse=True, scope="module")
def pbs_is_up():
    assert (PBS_BIN / "qsub").exists(), "no OpenPBS: run integration/pbs/up"


@pytest.fixture
def output(alice_scratch):
    return alice_scratch / "pbs.out"


def qsub(name, script, output, *resources, select="1:ncpus=1:mem=200mb"):
    """Submit `script` (shell text) as user `name`, stdout and stderr joined into `output`."""
    path = output.with_suffix(".sh")
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    options = ["-j", "oe", "-o", str(output), "-l", f"select={select}", *resources]
    result = run_as(name, [str(PBS_BIN / "qsub"), *options, str(path)], cwd=str(output.parent))
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def job_record(job):
    result = subprocess.run([PBS_BIN / "qstat", "-x", "-f", "-F", "json", job], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["Jobs"][job]


def wait_job(job, timeout=180):
    assert wait_until(lambda: job_record(job)["job_state"] == "F", timeout, interval=0.5), \
        f"job {job} still {job_record(job)['job_state']}"
    return job_record(job)


def run_job(script, output, *resources, select="1:ncpus=1:mem=200mb", timeout=180):
    job = qsub(ALICE, script, output, *resources, select=select)
    record = wait_job(job, timeout)
    assert wait_until(output.exists, timeout=30), f"PBS copied no output of job {job}"
    return job, record, output.read_text()


def running_container(job, timeout=90):
    def running():
        ids = job_containers(job)
        return len(ids) == 1 and json.loads(docker("inspect", ids[0]))[0]["State"]["Running"]
    assert wait_until(running, timeout, interval=0.5), f"job {job}: no running container"
    return job_containers(job)[0]


def container_cgroups(container_id):
    """{controller: path} of a running container's init, as the node sees it."""
    pid = json.loads(docker("inspect", container_id))[0]["State"]["Pid"]
    paths = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            paths[controller] = path
    return paths


def job_cgroup_dirs(job):
    return sorted(str(p) for p in Path("/sys/fs/cgroup").glob(f"*/pbs_jobs.service/jobid/{job}"))


def nothing_left(job):
    return (not job_containers(job) and not job_cgroup_dirs(job)
            and not [p for p in STATE_DIR.glob("*socker-*") if f"-j{job}-" in p.name])


def assert_nothing_left(job):
    """No container, cgroup directory or socker state of `job` remains, once the clean-up is done."""
    assert wait_until(lambda: nothing_left(job), timeout=60), (job_containers(job), job_cgroup_dirs(job))


def qdel(job):
    subprocess.run([PBS_BIN / "qdel", job], check=True)
    wait_job(job)


def test_the_container_runs_in_the_jobs_cgroups_under_its_memory_limit(output):
    job = qsub(ALICE, f"cd && {SOCKER} run {IMAGE} sleep 600", output)
    try:
        container = running_container(job)
        paths = container_cgroups(container)
        for controller in ("memory", "cpuset", "cpuacct", "devices"):
            assert re.fullmatch(JOB_CGROUP.format(job=re.escape(job)) + f"/{CONTAINER}", paths[controller]), paths
        limit = Path("/sys/fs/cgroup/memory", paths["memory"].lstrip("/"), "memory.limit_in_bytes").read_text()
        assert int(limit) == 200 * 1024 * 1024
        labels = json.loads(docker("inspect", container))[0]["Config"]["Labels"]
        assert labels["socker.job"] == job
    finally:
        qdel(job)
    assert_nothing_left(job)


def test_memory_over_the_jobs_limit_kills_the_container_and_says_so(output):
    job, record, text = run_job(f"cd && {SOCKER} run {IMAGE} {HOG}; echo status=$?", output)
    assert "status=137" in text.splitlines(), text
    assert "socker: the container was killed: the job's memory limit was reached" in text, text
    assert record["Exit_status"] == 0
    assert_nothing_left(job)


def test_qdel_removes_the_container_and_everything_of_the_job(output):
    job = qsub(ALICE, f"cd && {SOCKER} run {IMAGE} sleep 600", output)
    running_container(job)
    qdel(job)
    assert_nothing_left(job)
    assert not subprocess.run(["pgrep", "-u", str(user(ALICE).pw_uid), "-x", "sleep"]).returncode == 0


def test_what_socker_and_its_guardian_could_not_remove_the_end_of_job_hook_does(output):
    """socker and its guardian killed at once: the container outlives them, the job script goes
    on to its end, and the hook (packaging/socker_pbs_hook.py) removes the container then. That
    the hook removed it is the proof that it outlived them: by then the job's end may have
    killed its process (it is in the job's cgroups), so whether it still runs is not asked."""
    job = qsub(ALICE, f"cd && {SOCKER} run {IMAGE} sleep 600", output)
    container = running_container(job)
    sockers = subprocess.run(["pgrep", "-f", f"^{SOCKER} run {IMAGE} sleep 600$"], capture_output=True, text=True)
    pids = sockers.stdout.split()
    assert len(pids) == 2, pids  # socker and its guardian
    subprocess.run(["kill", "-KILL", *pids], check=True)
    wait_job(job)
    assert_nothing_left(job)
    told = subprocess.run(["grep", "-rh", f"{job};socker: removed container {container[:12]}",
                           "/var/spool/pbs/mom_logs"], capture_output=True, text=True).stdout
    assert told, f"the hook did not remove {container[:12]} of job {job}"


def test_walltime_removes_the_container(output):
    job = qsub(ALICE, f"cd && {SOCKER} run {IMAGE} sleep 600", output, "-l", "walltime=00:00:05")
    running_container(job)
    record = wait_job(job, timeout=240)
    assert record["Exit_status"] == -29, record  # JOB_EXEC_KILL_WALLTIME
    assert_nothing_left(job)


def test_two_containers_at_once_in_one_job(output):
    script = (f"cd && for n in 1 2; do {SOCKER} run {IMAGE} sh -c 'echo run $0; sleep 2' $n & done; wait; "
              "echo done")
    job, _, text = run_job(script, output)
    assert sorted(line for line in text.splitlines() if line.startswith("run ")) == ["run 1", "run 2"], text
    assert text.splitlines()[-1] == "done", text
    assert_nothing_left(job)


def test_pbs_counts_the_containers_cpu_time_and_memory(output):
    burn = "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done"
    job, record, text = run_job(f"cd && {SOCKER} run {IMAGE} sh -c '{burn}; {HOG.replace('300M', '100M')}'; "
                                "echo status=$?", output)
    assert "status=0" in text.splitlines(), text
    used = record["resources_used"]
    hours, minutes, seconds = (int(part) for part in used["cput"].split(":"))
    assert hours * 3600 + minutes * 60 + seconds >= 2, used
    assert int(used["mem"].removesuffix("kb")) >= 100 * 1024, used


def test_a_spoofed_pbs_jobid_changes_nothing(output, alice_scratch):
    bob_out = Path("/scratch", BOB, "pbs.out")
    bob_job = qsub(BOB, "sleep 300", bob_out)
    try:
        assert wait_until(lambda: job_record(bob_job)["job_state"] == "R", timeout=90)
        spoof = {"PBS_JOBID": bob_job, "PBS_JOBDIR": f"/var/spool/pbs/mom_priv/jobs/{bob_job}.TK",
                 "PBS_ENVIRONMENT": "PBS_BATCH"}
        # Outside any job: not in bob's.
        proc = popen_socker(ALICE, "run", IMAGE, "sleep", "600", env=spoof,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            label = f"label=socker.uid={user(ALICE).pw_uid}"
            assert wait_until(lambda: docker("ps", "-q", "--filter", label).split(), timeout=60)
            outside, = docker("ps", "-q", "--filter", label).split()
            assert "pbs_jobs" not in container_cgroups(outside)["memory"]
            assert "socker.job" not in json.loads(docker("inspect", outside))[0]["Config"]["Labels"]
        finally:
            proc.terminate()
            proc.wait(60)
        # Inside alice's own job: alice's.
        job = qsub(ALICE, f"cd && PBS_JOBID={bob_job} {SOCKER} run {IMAGE} sleep 600", output)
        try:
            paths = container_cgroups(running_container(job))
            assert paths["memory"].startswith(JOB_CGROUP.format(job=job) + "/"), paths
        finally:
            qdel(job)
    finally:
        subprocess.run([PBS_BIN / "qdel", bob_job], check=False)
        wait_job(bob_job)
        bob_out.unlink(missing_ok=True)


def test_mpirun_ranks_communicate_in_containers_inside_the_job(mpi_policy, output):  # noqa: F811
    script = (f"cd && {MPI_ENVIRONMENT}mpirun -np 2 --hostfile $PBS_NODEFILE "
              f"{SOCKER} run {MPI_IMAGE} {ALLREDUCE} 100000; echo status=$?")
    job, _, text = run_job(script, output, select="1:ncpus=2:mpiprocs=2:mem=1gb")
    assert "allreduce ranks=2 sum=3" in text, text
    assert "status=0" in text.splitlines(), text
    paths = re.findall(r"^rank \d+ of 2 cgroup \d+:memory:(\S+)$", text, re.M)
    assert len(set(paths)) == 2, text
    for path in paths:
        assert re.fullmatch(JOB_CGROUP.format(job=re.escape(job)) + f"/{CONTAINER}", path), path
    assert_nothing_left(job)
