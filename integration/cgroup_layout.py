"""Where Slurm puts a job's cgroups and socker its containers: cgroup v1 on the host, v2 in the guest.

integration/test_slurm.py is written once for both layouts; what differs between them is here,
behind one interface, and the `cgroups` fixture (conftest.py) picks the one in force:

v1 (Slurm's cgroup/v1, the host): one hierarchy per controller, each with
   /slurm_<node>/uid_U/job_J/step_S/task_T. socker puts the container below the task's cgroup,
   .../task_T/<container id>, so Slurm counts it with the task (sstat).
v2 (Slurm's cgroup/v2, the integration/vm guest): one hierarchy, with
   /system.slice/[<node>_]slurmstepd.scope/job_J/step_S/{slurm,user/task_T}. A cgroup that holds
   processes has no controlled children, so the container goes beside the tasks,
   .../step_S/user/<container id>: the step's cgroup counts it, task_T's (which sstat reads) does not.

Where a container landed is read from the node, through its init's /proc/PID/cgroup: on v2 the
engine gives each container a private cgroup namespace, in which its own /proc/self/cgroup is "0::/".
"""

import functools
import json
import re
import subprocess
from pathlib import Path

from helpers import docker

ROOT = Path("/sys/fs/cgroup")
CONTAINER = r"[0-9a-f]{64}"


def in_force():
    """The layout of this machine, from the cgroup file system mounted on /sys/fs/cgroup."""
    return CgroupV2() if (ROOT / "cgroup.controllers").exists() else CgroupV1()


def _init_pid(container_id):
    pid = json.loads(docker("inspect", container_id))[0]["State"]["Pid"]
    assert pid, f"container {container_id} is not running"
    return pid


def _tightest(directory, parts, name, unlimited):
    """The smallest `name` on the cgroup `parts` below `directory`, or on any of its ancestors."""
    limits = []
    for depth in range(len(parts) + 1):
        path = directory.joinpath(*parts[:depth]) / name
        if path.exists() and path.read_text().strip() not in unlimited:
            limits.append(int(path.read_text()))
    return min(limits) if limits else None


class CgroupV1:
    version = 1
    memory_limit_in_container = "/sys/fs/cgroup/memory/memory.limit_in_bytes"

    def container_cgroup(self, container_id):
        """The memory cgroup of a running container, as the node sees it."""
        lines = Path(f"/proc/{_init_pid(container_id)}/cgroup").read_text().splitlines()
        return next(line.split(":", 2)[2] for line in lines if line.split(":")[1] == "memory")

    def container_pattern(self, job, step, task):
        return rf"/slurm_[^/]+/uid_\d+/job_{job}/step_{step}/task_{task}/{CONTAINER}"

    def job_cgroup_dirs(self, job):
        return sorted(str(p) for p in ROOT.glob(f"*/slurm*/uid_*/job_{job}"))

    def task_cgroups(self, job, step):
        return sorted(p.name for p in ROOT.glob(f"memory/slurm*/uid_*/job_{job}/step_{step}/task_*"))

    def memory_limit(self, path):
        # 2^63 rounded down to pages: no limit.
        return _tightest(ROOT / "memory", Path(path.lstrip("/")).parts, "memory.limit_in_bytes",
                         {"9223372036854771712"})

    def cpus(self, path):
        return (ROOT / "cpuset" / path.lstrip("/") / "cpuset.effective_cpus").read_text().strip()

    def step_cpu_seconds(self, job, step):
        """The step's CPU time as Slurm accounts it (sstat): the container is inside the task's cgroup."""
        out = subprocess.run(["sstat", "-n", "-P", "-j", f"{job}.{step}", "-o", "TRESUsageInTot"],
                             capture_output=True, text=True).stdout
        found = re.search(r"cpu=(?:(\d+)-)?(\d+):(\d+):(\d+)", out)
        if not found:
            return 0
        days, hours, minutes, seconds = (int(n or 0) for n in found.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


class CgroupV2:
    version = 2
    memory_limit_in_container = "/sys/fs/cgroup/memory.max"

    def container_cgroup(self, container_id):
        """The cgroup of a running container, as the node sees it."""
        text = Path(f"/proc/{_init_pid(container_id)}/cgroup").read_text()
        assert text.startswith("0::"), text
        return text.strip()[3:]

    def container_pattern(self, job, step, task):
        # Beside the step's tasks, whichever task started it.
        return rf"/(?:[^/]+/)*[^/]*slurmstepd\.scope/job_{job}/step_{step}/user/{CONTAINER}"

    @functools.cached_property
    def _slurm_scope(self):
        """Slurm's slurmstepd.scope: <node>_slurmstepd.scope when Slurm supports several slurmd per host."""
        found = sorted(ROOT.glob("**/*slurmstepd.scope"), key=lambda p: len(p.parts))
        assert found, f"no slurmstepd.scope below {ROOT}: is Slurm using cgroup/v2?"
        return found[0]

    def job_cgroup_dirs(self, job):
        return sorted(str(p) for p in self._slurm_scope.glob(f"job_{job}"))

    def task_cgroups(self, job, step):
        return sorted(p.name for p in self._slurm_scope.glob(f"job_{job}/step_{step}/user/task_*"))

    def memory_limit(self, path):
        return _tightest(ROOT, Path(path.lstrip("/")).parts, "memory.max", {"max"})

    def cpus(self, path):
        return (ROOT / path.lstrip("/") / "cpuset.cpus.effective").read_text().strip()

    def step_cpu_seconds(self, job, step):
        """The step's CPU time as the kernel counts it (cpu.stat): Slurm's sstat reads task_<n>'s cgroup only."""
        stat = self._slurm_scope / f"job_{job}" / f"step_{step}" / "cpu.stat"
        if not stat.exists():
            return 0
        usage = dict(line.split() for line in stat.read_text().splitlines())
        return int(usage["usage_usec"]) / 1e6
