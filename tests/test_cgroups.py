"""Container placement below a job's cgroups, on fake cgroup v1 and v2 trees."""

import os

import pytest

from socker.host.cgroups import (absent_directories, cgroup_parent, hierarchy_roots, leave_job, oom_kills, place,
                                 remove_if_empty)
from socker.errors import JobError
from socker.host.jobs import find_job
from socker.model import Limits

UID = 1001
TASK_V1 = "/slurm_n1/uid_1001/job_42/step_0/task_0"
SLURM_V1 = f"4:memory:{TASK_V1}\n3:cpuset:/slurm_n1/uid_1001/job_42/step_0\n1:cpu:/\n"
LEAF_V2 = "/system.slice/slurmstepd.scope/job_42/step_0/user/task_0"


def mountinfo(roots):
    lines = [f"{30 + i} 25 0:{40 + i} / {root} rw,nosuid - {'cgroup2' if root.endswith('unified') else 'cgroup'}"
             f" cgroup rw,{root.rsplit('/', 1)[1]}" for i, root in enumerate(roots)]
    return "\n".join(["22 1 8:1 / / rw - ext4 /dev/sda1 rw", *lines]) + "\n"


def test_hierarchy_roots_lists_only_cgroup_mounts():
    text = mountinfo(["/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"])
    assert hierarchy_roots(text) == ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"]


@pytest.fixture
def tree_v1(tmp_path):
    """memory has the job's task cgroup, cpuset only the step, cpu nothing of the job."""
    memory, cpuset, cpu = (tmp_path / c for c in ("memory", "cpuset", "cpu"))
    (memory / TASK_V1.lstrip("/")).mkdir(parents=True)
    (cpuset / "slurm_n1/uid_1001/job_42/step_0").mkdir(parents=True)
    cpu.mkdir()
    return tmp_path


def test_v1_parent_is_the_task_cgroup():
    assert cgroup_parent(find_job(SLURM_V1, UID)) == TASK_V1


def test_v1_absent_directories_deepest_first(tree_v1):
    roots = [str(tree_v1 / c) for c in ("memory", "cpuset", "cpu")]
    absent = absent_directories(roots, TASK_V1)
    assert absent[0].endswith("task_0")
    assert str(tree_v1 / "cpuset" / TASK_V1.lstrip("/")) in absent
    assert str(tree_v1 / "cpu/slurm_n1") in absent
    assert not any(p.startswith(str(tree_v1 / "memory")) for p in absent)
    depths = [p.count("/") for p in absent]
    assert depths == sorted(depths, reverse=True)


def test_tidy_removes_only_what_is_empty(tree_v1):
    roots = [str(tree_v1 / c) for c in ("memory", "cpuset", "cpu")]
    absent = absent_directories(roots, TASK_V1)
    for root in roots:  # what the engine does when it creates the container
        (tree_v1 / root / TASK_V1.lstrip("/") / "container").mkdir(parents=True, exist_ok=True)
    busy = tree_v1 / "cpu" / TASK_V1.lstrip("/") / "container"
    (busy / "cgroup.procs").write_text("123\n")  # stands for a cgroup that still has a process
    for root in ("memory", "cpuset"):
        (tree_v1 / root / TASK_V1.lstrip("/") / "container").rmdir()  # the engine removed its own
    remove_if_empty(absent)
    assert not (tree_v1 / "cpuset" / TASK_V1.lstrip("/")).exists()
    assert (tree_v1 / "cpuset/slurm_n1/uid_1001/job_42/step_0").is_dir()
    assert (tree_v1 / "memory" / TASK_V1.lstrip("/")).is_dir()
    assert busy.is_dir()


def test_place_outside_a_job_is_the_engines_default(tmp_path):
    placement = place(None, 4096, mountinfo=str(tmp_path / "absent"))
    assert placement.parent == "" and placement.created == ()


def test_place_reads_mountinfo(tree_v1):
    info = tree_v1 / "mountinfo"
    info.write_text(mountinfo([str(tree_v1 / c) for c in ("memory", "cpuset", "cpu")]))
    placement = place(find_job(SLURM_V1, UID), 4096, mountinfo=str(info), root=str(tree_v1))
    assert placement.parent == TASK_V1
    assert placement.created == tuple(absent_directories(
        [str(tree_v1 / c) for c in ("memory", "cpuset", "cpu")], TASK_V1))


def make_v2(root, leaf, processes):
    """A unified tree with `processes` ({path: pids}) written to each cgroup.procs."""
    path = root
    for part in leaf.strip("/").split("/"):
        path = path / part
        path.mkdir(exist_ok=True)
        (path / "cgroup.procs").write_text("")
    for cgroup, pids in processes.items():
        (root / cgroup.lstrip("/") / "cgroup.procs").write_text("".join(f"{p}\n" for p in pids))


def test_v2_container_goes_beside_the_callers_leaf(tmp_path):
    make_v2(tmp_path, LEAF_V2, {LEAF_V2: [100, 101]})
    job = find_job(f"0::{LEAF_V2}\n", UID)
    assert cgroup_parent(job, root=str(tmp_path)) == "/system.slice/slurmstepd.scope/job_42/step_0/user"


def test_v2_parent_holding_processes_is_refused(tmp_path):
    parent = LEAF_V2.rsplit("/", 1)[0]
    make_v2(tmp_path, LEAF_V2, {LEAF_V2: [100], parent: [99]})
    with pytest.raises(JobError, match="holds processes"):
        cgroup_parent(find_job(f"0::{LEAF_V2}\n", UID), root=str(tmp_path))


def test_v2_job_that_is_itself_a_leaf_is_refused(tmp_path):
    leaf = "/pbs_jobs.service/jobid/1234.server"
    make_v2(tmp_path, leaf, {leaf: [100]})
    with pytest.raises(JobError, match="no parent within the job"):
        cgroup_parent(find_job(f"0::{leaf}\n", UID), root=str(tmp_path))


@pytest.mark.parametrize("leaf, parent", [
    ("/torque/77.server/R0.node3", "/torque/77.server"),
    ("/lsf/c1/job.991.0.1700000000/task", "/lsf/c1/job.991.0.1700000000"),
])
def test_v2_container_may_go_in_the_jobs_own_cgroup_when_the_caller_is_below_it(tmp_path, leaf, parent):
    make_v2(tmp_path, leaf, {leaf: [100]})
    assert cgroup_parent(find_job(f"0::{leaf}\n", UID), root=str(tmp_path)) == parent

# ---------------------------------------------------------------- the job's limits, seen from inside

def write_limits(root, path, files):
    directory = root / path.lstrip("/")
    directory.mkdir(parents=True, exist_ok=True)
    for filename, value in files.items():
        (directory / filename).write_text(f"{value}\n")


def test_v1_the_smallest_memory_limit_on_the_path_and_the_default_pids(tree_v1):
    write_limits(tree_v1 / "memory", "/", {"memory.limit_in_bytes": 9223372036854771712})
    write_limits(tree_v1 / "memory", "/slurm_n1/uid_1001/job_42", {"memory.limit_in_bytes": 200 << 20})
    write_limits(tree_v1 / "memory", "/slurm_n1/uid_1001/job_42/step_0", {"memory.limit_in_bytes": 300 << 20})
    write_limits(tree_v1 / "memory", TASK_V1, {"memory.limit_in_bytes": 9223372036854771712})
    write_limits(tree_v1 / "pids", "/", {"pids.max": "max"})
    info = tree_v1 / "mountinfo"
    info.write_text(mountinfo([str(tree_v1 / c) for c in ("memory", "cpuset", "cpu", "pids")]))
    placement = place(find_job(SLURM_V1, UID), 4096, mountinfo=str(info), root=str(tree_v1))
    assert placement.limits == Limits(memory_bytes=200 << 20, cpus=None, pids=4096, memory_swap_bytes=-1)


def test_v2_a_job_with_its_own_pids_limit_gets_none_of_ours(tmp_path):
    make_v2(tmp_path, LEAF_V2, {LEAF_V2: [100]})
    write_limits(tmp_path, "/system.slice/slurmstepd.scope/job_42", {"memory.max": 104857600, "pids.max": 500})
    write_limits(tmp_path, "/system.slice/slurmstepd.scope/job_42/step_0", {"memory.max": "max", "pids.max": "max"})
    info = tmp_path / "mountinfo"
    info.write_text(mountinfo([str(tmp_path / "unified")]))
    placement = place(find_job(f"0::{LEAF_V2}\n", UID), 4096, mountinfo=str(info), root=str(tmp_path))
    assert placement.limits == Limits(memory_bytes=104857600, cpus=None, pids=None, memory_swap_bytes=-1)


def test_a_job_without_a_memory_limit_leaves_the_containers_unset(tmp_path):
    make_v2(tmp_path, LEAF_V2, {LEAF_V2: [100]})
    info = tmp_path / "mountinfo"
    info.write_text(mountinfo([str(tmp_path / "unified")]))
    placement = place(find_job(f"0::{LEAF_V2}\n", UID), 64, mountinfo=str(info), root=str(tmp_path))
    assert placement.limits == Limits(memory_bytes=None, cpus=None, pids=64, memory_swap_bytes=None)


# ---------------------------------------------------------------- OOM kills, counted by the job

def test_v2_the_containers_parent_counts_its_oom_kills_whichever_limit_was_reached(tmp_path):
    make_v2(tmp_path, LEAF_V2, {LEAF_V2: [100]})
    parent = "/system.slice/slurmstepd.scope/job_42/step_0/user"
    write_limits(tmp_path, parent, {"memory.events": "low 0\nhigh 0\nmax 3\noom 0\noom_kill 1\noom_group_kill 0"})
    info = tmp_path / "mountinfo"
    info.write_text(mountinfo([str(tmp_path / "unified")]))
    placement = place(find_job(f"0::{LEAF_V2}\n", UID), 64, mountinfo=str(info), root=str(tmp_path))
    assert oom_kills(placement) == 1
    write_limits(tmp_path, parent, {"memory.events": "low 0\nhigh 0\nmax 9\noom 1\noom_kill 2\noom_group_kill 0"})
    assert oom_kills(placement) == 2


def test_no_count_of_oom_kills_outside_a_job_or_on_v1(tree_v1):
    info = tree_v1 / "mountinfo"
    info.write_text(mountinfo([str(tree_v1 / c) for c in ("memory", "cpuset", "cpu", "pids")]))
    assert oom_kills(place(None, 64)) is None
    assert oom_kills(place(find_job(SLURM_V1, UID), 64, mountinfo=str(info), root=str(tree_v1))) is None


def test_a_root_child_leaves_each_of_the_jobs_cgroups_for_the_top_of_its_hierarchy(tmp_path):
    job = find_job("5:freezer:/slurm/uid_1000/job_7/step_0\n4:memory:/slurm/uid_1000/job_7/step_0/task_0\n"
                   "3:name=systemd:/user.slice\n", 1000)
    for controller in ("freezer", "memory", "systemd"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").write_text("")
    leave_job(job, root=str(tmp_path))
    assert [(tmp_path / c / "cgroup.procs").read_text() for c in ("freezer", "memory", "systemd")] == [
        str(os.getpid()), str(os.getpid()), ""]


def test_v2_a_root_child_leaves_the_job_for_the_top_cgroup(tmp_path):
    job = find_job("0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_0\n", 1000)
    (tmp_path / "cgroup.procs").write_text("")
    leave_job(job, root=str(tmp_path))
    assert (tmp_path / "cgroup.procs").read_text() == str(os.getpid())


def test_a_job_that_cannot_be_left_is_an_error(tmp_path):
    job = find_job("0::/system.slice/slurmstepd.scope/job_7/step_0/user/task_0\n", 1000)
    with pytest.raises(JobError, match="cannot leave the job's cgroups"):
        leave_job(job, root=str(tmp_path / "absent"))
