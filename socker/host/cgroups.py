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

from ..errors import JobError
from ..model import Limits
from ..value import Value

CGROUP_ROOT = "/sys/fs/cgroup"


# Values at or above this in a v1 limit file mean "no limit" (the kernel shows a page-rounded 2**63 - 1).
_V1_UNLIMITED = 1 << 62


class Placement(Value):
    parent: str  # CgroupParent for the engine; "" outside a job (the engine's default)
    created: tuple  # directories that creating the container will add, deepest first
    limits: Limits | None = None  # the container's own limits in a job: the job's, seen from inside
    # cgroup v2: memory.events of `parent`. Its oom_kill counts every process killed for memory
    # below it, whichever cgroup's limit was reached: the job's, when its other processes (socker's
    # own among them) took the rest, is one the engine does not always see as the container's.
    oom_events: str | None = None


def place(job, pids_default, mountinfo="/proc/self/mountinfo", root=CGROUP_ROOT):
    """Where a container of `job` (None: no job) goes, what to tidy after it, and its own limits.

    The container's cgroup gets the job's effective memory limit (the smallest on its path), so
    that a program sizing itself from its own cgroup sees what binds it; and `pids_default`
    processes at most where the job's cgroups set no such limit.
    """
    if job is None:
        return Placement("", ())
    try:
        with open(mountinfo) as f:
            roots = hierarchy_roots(f.read())
    except OSError as e:
        raise JobError(f"cannot read {mountinfo}: {e.strerror}") from e
    parent = cgroup_parent(job, root)
    memory = smallest_limit(job, parent, "memory", "memory.max" if job.unified else "memory.limit_in_bytes", root)
    pids = smallest_limit(job, parent, "pids", "pids.max", root)
    limits = Limits(memory_bytes=memory, cpus=None, pids=pids_default if pids is None else None,
                    memory_swap_bytes=None if memory is None else -1)
    oom_events = os.path.join(root, parent.lstrip("/"), "memory.events") if job.unified else None
    return Placement(parent, tuple(absent_directories(roots, parent)), limits, oom_events)


def leave_job(job, root=CGROUP_ROOT):
    """Move this process out of `job`'s cgroups, to the top of each hierarchy it is in there: a root
    child that works for the whole node (the puller) must be neither frozen, nor signalled, nor
    ended with the job. Only the job's cgroups are left: the scheduler's alone. Needs root."""
    for hierarchy in [root] if job.unified else [os.path.join(root, controller) for controller in job.cgroups]:
        try:
            with open(os.path.join(hierarchy, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError as e:
            raise JobError(f"cannot leave the job's cgroups ({hierarchy}): {e.strerror}") from e


def oom_kills(placement):
    """How many processes below the container's parent were killed for memory so far; None where
    no count exists (outside a job, on cgroup v1, where the engine's own report holds, or where the
    job's cgroups have no memory controller). Only socker's message depends on it: never an error."""
    if placement.oom_events is None:
        return None
    try:
        with open(placement.oom_events) as f:
            return int(dict(line.split(None, 1) for line in f if line.strip()).get("oom_kill", "0"))
    except (OSError, ValueError):
        return None


def smallest_limit(job, parent, controller, filename, root=CGROUP_ROOT):
    """The smallest limit `filename` sets on `parent` or any cgroup above it, or None if none does."""
    base = root if job.unified else os.path.join(root, controller)
    components = [part for part in parent.split("/") if part]
    found = []
    for depth in range(len(components) + 1):
        try:
            with open(os.path.join(base, *components[:depth], filename)) as f:
                value = f.read().strip()
        except FileNotFoundError:
            continue  # not (yet) a cgroup, or no such controller there
        except OSError as e:
            raise JobError(f"cannot read {filename} of the job's cgroups: {e.strerror}") from e
        if value.isdigit() and int(value) < _V1_UNLIMITED:
            found.append(int(value))
    return min(found, default=None)


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
    if len(parent) < len(job.own_cgroup("")):
        raise JobError(f"the job's cgroup {leaf} holds processes and has no parent within the job; "
                       "cgroup v2 allows no container below it")
    if _has_processes(os.path.join(root, parent.lstrip("/"))):
        raise JobError(f"cgroup {parent} holds processes: cgroup v2 allows no container below it")
    return parent


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
