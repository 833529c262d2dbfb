"""Which batch job the caller is in, read from the kernel's record of this process's cgroups.

Never from SLURM_JOB_ID, PBS_JOBID or any other variable the caller controls:
only root may move a process into a cgroup of the scheduler's, so
/proc/self/cgroup is the truth, once each cgroup on it from the job's own down
is known to be the scheduler's (see made_by_the_scheduler). Each scheduler's
layout is one entry in LAYOUTS; a path that looks like a job but does not fit
its layout exactly is an error, not "no job".
"""

import os
import re

from ..errors import JobError
from ..value import Value
from .cgroups import CGROUP_ROOT

# Slurm cgroup/v1: /slurm_<node>/uid_<uid>/job_<id>/step_<step>[/task_<n>]; older: /slurm/uid_...
# Slurm cgroup/v2: /system.slice/slurmstepd.scope/job_<id>/step_<step>/user/task_<n>; a Slurm built
#   with --enable-multiple-slurmd (Debian's) names the scope <node>_slurmstepd.scope. Anchored at
#   system.slice: below a cgroup delegated to a user (user.slice) anyone can make that layout.
# PBS Pro: /pbs_jobs.service/jobid/<jobid> (v1 and v2); older PBS Pro v1: /pbspro/<jobid>
# Torque: /torque/<jobid>[/...]; LSF: /lsf/<cluster>/job.<jobid>.<index>.<time>[/...]
LAYOUTS = (
    ("slurm", re.compile(r"/slurm(?:_[^/]+)?/uid_(?P<uid>\d+)/job_(?P<job>\d+)/step_(?P<step>[a-z0-9_]+)"
                         r"(?:/task_(?P<task>\d+))?\Z")),
    ("slurm", re.compile(r"/system\.slice/(?:[^/]+_)?slurmstepd\.scope/job_(?P<job>\d+)/step_(?P<step>[a-z0-9_]+)"
                         r"/user/task_(?P<task>\d+|special)\Z")),
    ("pbs", re.compile(r"/pbs_jobs\.service/jobid/(?P<job>[0-9]+(?:\[[0-9]*\])?\.[A-Za-z0-9.-]+)\Z")),
    ("pbs", re.compile(r"/pbspro/(?P<job>[0-9]+(?:\[[0-9]*\])?\.[A-Za-z0-9.-]+)\Z")),
    ("torque", re.compile(r"/torque/(?P<job>[0-9]+(?:\[[0-9]*\])?\.[A-Za-z0-9.-]+)(?:/[^/]+)*\Z")),
    ("lsf", re.compile(r"/lsf/[A-Za-z0-9_.-]+/job\.(?P<job>[0-9]+)\.(?P<index>[0-9]+)\.[0-9]+(?:/[^/]+)*\Z")),
)
# Directory names that mean "this is a scheduler's cgroup", to tell a malformed path from no job.
_SCHEDULER_MARKS = re.compile(r"/(?:slurm[^/]*|[^/]*_slurmstepd\.scope|pbs_jobs\.service|pbspro|torque|lsf)(?:/|\Z)")
# The controllers whose limits bind a job; the container is placed below the job's cgroup in each.
BINDING_CONTROLLERS = ("memory", "cpuset", "cpuacct", "cpu", "pids", "freezer", "devices", "blkio")


class Job(Value):
    scheduler: str
    job_id: str
    step: str | None
    unified: bool  # cgroup v2
    cgroups: dict  # controller (or "" for v2) -> this process's cgroup path in that hierarchy

    @property
    def cgroup_parent(self):
        """The cgroup path below which the engine creates the container: the deepest job path."""
        return max(self.cgroups.values(), key=len)

    def own_cgroup(self, controller):
        """The job's own cgroup in `controller`'s hierarchy (or "" for v2): this process's path up to
        the directory its scheduler's layout names the job in."""
        path = self.cgroups[controller]
        _, match = _match(path)
        end = path.find("/", match.end("job"))
        return path if end < 0 else path[:end]


def parse_proc_cgroup(text):
    """{controller: path} from /proc/<pid>/cgroup; the v2 hierarchy is under the key ""."""
    paths = {}
    for line in text.splitlines():
        if not line:
            continue
        parts = line.split(":", 2)
        if len(parts) != 3:
            raise JobError(f"cannot read /proc/self/cgroup: unexpected line {line!r}")
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller.removeprefix("name=")] = path
    return paths


def find_job(proc_cgroup_text, uid):
    """The Job this process belongs to, or None outside any job."""
    paths = parse_proc_cgroup(proc_cgroup_text)
    v1 = {c: p for c, p in paths.items() if c in BINDING_CONTROLLERS}
    unified = not v1
    candidates = {"": paths[""]} if unified and "" in paths else v1
    found = {}
    for controller, path in candidates.items():
        match = _match(path)
        if match is None:
            if _SCHEDULER_MARKS.search(path):
                raise JobError(f"cgroup {path} looks like a batch job's but has an unknown layout")
            continue
        found[controller] = (path, match)
    if not found:
        return None
    identities = {(scheduler, m["job"], m.groupdict().get("step")) for _, (scheduler, m) in found.values()}
    if len(identities) != 1:
        raise JobError("this process's cgroups name different jobs: " + ", ".join(sorted(
            f"{c}:{p}" for c, (p, _) in found.items())))
    (scheduler, job_id, step), = identities
    for path, (_, match) in found.values():
        owner = match.groupdict().get("uid")
        if owner is not None and int(owner) != uid:
            raise JobError(f"cgroup {path} belongs to uid {owner}, not to you")
    return Job(scheduler=scheduler, job_id=job_id, step=step, unified=unified,
               cgroups={c: p for c, (p, _) in found.items()})


def _match(path):
    for scheduler, layout in LAYOUTS:
        match = layout.match(path)
        if match:
            return scheduler, match
    return None


def current_job(uid, proc_cgroup="/proc/self/cgroup", root=CGROUP_ROOT):
    try:
        with open(proc_cgroup) as f:
            text = f.read()
    except OSError as e:
        raise JobError(f"cannot read {proc_cgroup}: {e.strerror}") from e
    job = find_job(text, uid)
    if job is not None:
        made_by_the_scheduler(job, root)
    return job


def made_by_the_scheduler(job, root=CGROUP_ROOT):
    """Refuse unless every cgroup from the job's own down to this process's is the scheduler's.

    Slurm's cgroup/v1 gives the user its step and task directories, so a job can make a cgroup
    there and move into it: a path of the layout that is not the job's (a step without GPUs so
    regains the batch step's; a process there outlives the job, and Slurm's clean-up with it).
    The kernel gives a new cgroup's files to its maker, and a scheduler's cgroup.procs stay
    root's (Slurm chowns only the directories): that tells the two apart."""
    for controller, path in job.cgroups.items():
        hierarchy = root if job.unified else os.path.join(root, controller)
        top = job.own_cgroup(controller)
        below = [part for part in path[len(top):].split("/") if part]
        for depth in range(len(below) + 1):
            cgroup = "/".join([top, *below[:depth]])
            try:
                owner = os.lstat(os.path.join(hierarchy, cgroup.lstrip("/"), "cgroup.procs")).st_uid
            except OSError as e:
                raise JobError(f"cannot check cgroup {cgroup}: {e.strerror}") from e
            if owner != 0:
                raise JobError(f"cgroup {cgroup} was made by uid {owner}, not by the batch system: "
                               "socker runs containers only in the scheduler's own cgroups")
