"""Where in the job's cgroups the engine creates the container, and tidying up after it.

The engine is asked for `CgroupParent`, so runc creates the container's
cgroups below the job's before the container's first instruction: the job's
limits, accounting and process tracking apply from the start.

cgroup v1: the parent is the caller's deepest job cgroup (Slurm: the task's),
so the container is counted in the task's usage. runc creates that path in
every mounted hierarchy, including those where the scheduler has no such
directory; socker notes which directories did not exist before and removes
them, if empty, once the container is gone.

cgroup v2: a cgroup that holds processes cannot have controllers enabled for
children, and the caller's own cgroup holds socker. The container goes beside
it, below its parent, which must still be inside the job and hold no
processes itself (Slurm: job_N/step_M/user).
"""

import os
import posixpath
from dataclasses import dataclass

from .errors import JobError

CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True)
class Placement:
    parent: str  # CgroupParent for the engine; "" outside a job (the engine's default)
    created: tuple  # directories that creating the container will add, deepest first


def place(job, mountinfo="/proc/self/mountinfo", root=CGROUP_ROOT):
    """Where a container of `job` (None: no job) goes, and what to tidy after it."""
    if job is None:
        return Placement("", ())
    try:
        with open(mountinfo) as f:
            roots = hierarchy_roots(f.read())
    except OSError as e:
        raise JobError(f"cannot read {mountinfo}: {e.strerror}") from e
    parent = cgroup_parent(job, root)
    return Placement(parent, tuple(absent_directories(roots, parent)))


def hierarchy_roots(mountinfo_text):
    """Mount points of the cgroup hierarchies (v1 and v2) listed in /proc/self/mountinfo."""
    roots = []
    for line in mountinfo_text.splitlines():
        fields = line.split()
        if " - " not in line:
            continue
        fstype = line.split(" - ", 1)[1].split()[0]
        if fstype in ("cgroup", "cgroup2"):
            roots.append(fields[4].replace("\\040", " "))
    return roots


def cgroup_parent(job, root=CGROUP_ROOT):
    """The CgroupParent for a container of `job`."""
    if not job.unified:
        return job.cgroup_parent
    leaf = job.cgroups[""]
    parent = posixpath.dirname(leaf)
    if len(parent) <= len(_job_root_v2(job, leaf)):
        raise JobError(f"the job's cgroup {leaf} holds processes and has no parent within the job; "
                       "cgroup v2 allows no container below it")
    if _has_processes(os.path.join(root, parent.lstrip("/"))):
        raise JobError(f"cgroup {parent} holds processes: cgroup v2 allows no container below it")
    return parent


def _job_root_v2(job, leaf):
    """The outermost cgroup of the job: the path up to and including job_<id> (or the job's own name)."""
    marker = f"/job_{job.job_id}"
    if marker in leaf:
        return leaf[:leaf.index(marker) + len(marker)]
    return leaf  # layouts whose job cgroup is the leaf itself


def _has_processes(path):
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return bool(f.read().strip())
    except OSError as e:
        raise JobError(f"cannot read {path}/cgroup.procs: {e.strerror}") from e


def absent_directories(roots, parent):
    """Directories of `parent` that do not exist yet in each hierarchy, deepest first."""
    components = [part for part in parent.split("/") if part]
    absent = []
    for root in roots:
        for depth in range(1, len(components) + 1):
            path = os.path.join(root, *components[:depth])
            if not os.path.isdir(path):
                absent.append(path)
    return sorted(absent, key=lambda p: p.count("/"), reverse=True)


def remove_if_empty(directories):
    """rmdir each directory; a cgroup that still has processes or children stays."""
    for path in directories:
        try:
            os.rmdir(path)
        except OSError:
            pass
