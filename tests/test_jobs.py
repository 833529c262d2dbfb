"""Which job a process is in, from fake /proc/self/cgroup records of each scheduler's layout."""

import os

import pytest

from socker.errors import JobError
from socker.host.jobs import current_job, find_job, made_by_the_scheduler

UID = 1001

SLURM_V1 = """\
9:name=systemd:/
8:pids:/
6:freezer:/slurm_node1/uid_1001/job_42/step_0
5:devices:/slurm_node1/uid_1001/job_42/step_0/task_1
4:memory:/slurm_node1/uid_1001/job_42/step_0/task_1
3:cpuset:/slurm_node1/uid_1001/job_42/step_0
2:cpuacct,cpu:/slurm_node1/uid_1001/job_42/step_0/task_1
0::/
"""
SLURM_V1_BATCH = SLURM_V1.replace("step_0", "step_batch").replace("task_1", "task_0")
SLURM_V2 = "0::/system.slice/slurmstepd.scope/job_42/step_3/user/task_0\n"
# Slurm built with --enable-multiple-slurmd (Debian 12's 22.05) prefixes the scope with the node's name.
SLURM_V2_NODE = "0::/system.slice/node-1_slurmstepd.scope/job_42/step_batch/user/task_0\n"
PBS_V2 = "0::/pbs_jobs.service/jobid/1234.pbs-server\n"
PBS_V1 = "7:memory:/pbs_jobs.service/jobid/1234.pbs-server\n3:cpuset:/pbs_jobs.service/jobid/1234.pbs-server\n"
PBSPRO_V1 = "7:memory:/pbspro/1234.head\n3:cpuset:/pbspro/1234.head\n"
TORQUE_V1 = "7:memory:/torque/77.torque-server/R0.node3\n3:cpuset:/torque/77.torque-server\n"
LSF_V1 = "7:memory:/lsf/cluster1/job.991.0.1700000000/task\n3:cpuset:/lsf/cluster1/job.991.0.1700000000\n"
NO_JOB_V1 = "4:memory:/user.slice/user-1001.slice/session-3.scope\n3:cpuset:/\n0::/\n"
NO_JOB_V2 = "0::/user.slice/user-1001.slice/session-3.scope\n"
DOCKER = "4:memory:/docker/abc\n0::/docker/abc\n"


@pytest.mark.parametrize("text, scheduler, job_id, step, parent", [
    (SLURM_V1, "slurm", "42", "0", "/slurm_node1/uid_1001/job_42/step_0/task_1"),
    (SLURM_V1_BATCH, "slurm", "42", "batch", "/slurm_node1/uid_1001/job_42/step_batch/task_0"),
    (SLURM_V2, "slurm", "42", "3", "/system.slice/slurmstepd.scope/job_42/step_3/user/task_0"),
    (SLURM_V2_NODE, "slurm", "42", "batch", "/system.slice/node-1_slurmstepd.scope/job_42/step_batch/user/task_0"),
    (PBS_V2, "pbs", "1234.pbs-server", None, "/pbs_jobs.service/jobid/1234.pbs-server"),
    (PBS_V1, "pbs", "1234.pbs-server", None, "/pbs_jobs.service/jobid/1234.pbs-server"),
    (PBSPRO_V1, "pbs", "1234.head", None, "/pbspro/1234.head"),
    (TORQUE_V1, "torque", "77.torque-server", None, "/torque/77.torque-server/R0.node3"),
    (LSF_V1, "lsf", "991", None, "/lsf/cluster1/job.991.0.1700000000/task"),
])
def test_layouts(text, scheduler, job_id, step, parent):
    job = find_job(text, UID)
    assert (job.scheduler, job.job_id, job.step, job.cgroup_parent) == (scheduler, job_id, step, parent)
    assert job.unified == text.startswith("0::")


def test_slurm_v1_uses_only_the_controllers_in_the_job():
    job = find_job(SLURM_V1, UID)
    assert set(job.cgroups) == {"freezer", "devices", "memory", "cpuset", "cpuacct", "cpu"}


@pytest.mark.parametrize("text", [NO_JOB_V1, NO_JOB_V2, DOCKER, "0::/\n"])
def test_outside_any_job(text):
    assert find_job(text, UID) is None


def test_another_users_job_is_refused():
    with pytest.raises(JobError, match="uid 1002"):
        find_job(SLURM_V1.replace("uid_1001", "uid_1002"), UID)


def test_controllers_naming_different_jobs_are_refused():
    with pytest.raises(JobError, match="different jobs"):
        find_job(SLURM_V1.replace("3:cpuset:/slurm_node1/uid_1001/job_42", "3:cpuset:/slurm_node1/uid_1001/job_43"),
                 UID)


@pytest.mark.parametrize("path", [
    "/slurm_node1/uid_1001/job_42",            # a job, but no step
    "/slurm_node1/uid_1001/job_42/step_0/../../job_7/step_0",
    "/slurm_node1/uid_x/job_42/step_0",
    "/pbspro/not a job",
    "/torque/../etc",
])
def test_malformed_scheduler_paths_are_errors_not_no_job(path):
    with pytest.raises(JobError, match="unknown layout"):
        find_job(f"4:memory:{path}\n", UID)


@pytest.mark.parametrize("path", [
    "/system.slice/node-1_slurmstepd.scope/job_42",  # the job, not a task of a step
    "/system.slice/node-1_slurmstepd.scope/job_42/step_0/slurm",  # slurmstepd's own cgroup
])
def test_malformed_slurm_v2_paths_with_a_node_prefix_are_errors_not_no_job(path):
    with pytest.raises(JobError, match="unknown layout"):
        find_job(f"0::{path}\n", UID)


def test_a_slurm_v2_layout_made_in_a_users_own_delegated_cgroup_is_refused():
    # systemd-run --user --scope -p Delegate=yes lets a user build any tree below their slice.
    fake = "0::/user.slice/user-1001.slice/user@1001.service/x.scope/slurmstepd.scope/job_7/step_0/user/task_0\n"
    with pytest.raises(JobError, match="unknown layout"):
        find_job(fake, UID)


def test_environment_is_not_consulted(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    monkeypatch.setenv("PBS_JOBID", "99.server")
    assert find_job(NO_JOB_V1, UID) is None
    assert find_job(SLURM_V1, UID).job_id == "42"


def _hierarchy(root, job, owners=None):
    """A fake cgroup tree holding `job`'s cgroups, each with a cgroup.procs owned by root, or by
    owners[path] for the cgroup paths it names."""
    owners = owners or {}
    for controller, path in job.cgroups.items():
        parts = [part for part in path.split("/") if part]
        for depth in range(1, len(parts) + 1):
            cgroup = "/" + "/".join(parts[:depth])
            procs = root.joinpath(controller, *parts[:depth], "cgroup.procs")
            procs.parent.mkdir(parents=True, exist_ok=True)
            procs.touch()
            os.chown(procs, owners.get(cgroup, 0), 0)


@pytest.mark.root
def test_current_job_reads_the_given_file(tmp_path):
    record = tmp_path / "cgroup"
    record.write_text(SLURM_V2)
    _hierarchy(tmp_path / "fs", find_job(SLURM_V2, UID))
    assert current_job(UID, str(record), root=str(tmp_path / "fs")).job_id == "42"
    with pytest.raises(JobError, match="cannot read"):
        current_job(UID, str(tmp_path / "missing"), root=str(tmp_path / "fs"))


@pytest.mark.root
@pytest.mark.parametrize("text", [SLURM_V1, SLURM_V2, PBS_V1, TORQUE_V1, LSF_V1])
def test_the_schedulers_own_cgroups_are_the_job(tmp_path, text):
    job = find_job(text, UID)
    # Slurm chowns its step and task directories to the user; their cgroup.procs stay root's.
    _hierarchy(tmp_path, job, owners={"/slurm_node1/uid_1001": UID})
    made_by_the_scheduler(job, str(tmp_path))


@pytest.mark.root
@pytest.mark.parametrize("text, made", [
    # A cgroup the job made below its step's, named as Slurm names a task.
    (SLURM_V1, "/slurm_node1/uid_1001/job_42/step_0/task_1"),
    (SLURM_V1_BATCH, "/slurm_node1/uid_1001/job_42/step_batch"),
    (SLURM_V2, "/system.slice/slurmstepd.scope/job_42/step_3/user/task_0"),
    (SLURM_V1, "/slurm_node1/uid_1001/job_42"),
    (TORQUE_V1, "/torque/77.torque-server/R0.node3"),
    (LSF_V1, "/lsf/cluster1/job.991.0.1700000000/task"),
])
def test_a_cgroup_the_user_made_is_not_the_job(tmp_path, text, made):
    job = find_job(text, UID)
    _hierarchy(tmp_path, job, owners={made: UID})
    with pytest.raises(JobError, match=f"cgroup {made} was made by uid {UID}, not by the batch system"):
        made_by_the_scheduler(job, str(tmp_path))


def test_a_cgroup_that_cannot_be_checked_is_refused(tmp_path):
    with pytest.raises(JobError, match="cannot check cgroup /slurm_node1/uid_1001/job_42"):
        made_by_the_scheduler(find_job(SLURM_V1, UID), str(tmp_path))


def test_malformed_record_line():
    with pytest.raises(JobError, match="unexpected line"):
        find_job("garbage\n", UID)
