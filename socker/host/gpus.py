"""Which GPUs a container gets: the units the caller's job holds on this node, as the kernel says.

Never from a variable (CUDA_VISIBLE_DEVICES, SLURM_JOB_GPUS, SLURM_STEP_GPUS, NVIDIA_*), nor from
anything a user can write into (the controller's record of a job shows its name and comment):
only the kernel's verdict. The scheduler's device filter binds the caller's own cgroup, which
socker's process is in, so root's access(2) to each unit says which ones the job's step or task
holds (a denied one fails with EPERM whoever asks). A filter that allows every unit may be no
filter at all (ConstrainDevices=no): then the kernel must also say that a filter binds
(`devicefilter`), or the container gets none.

The container gets exactly those device files and the shared ones, the driver's libraries
read-only, and the admin's variables numbering its GPUs 0..n-1. Nothing else would bind it on
cgroup v2: the engine's device filter for the container replaces the job's.
"""

import os
import stat

from ..errors import SockerError
from ..value import Value
from . import devicefilter, securefile


class Grant(Value):
    units: tuple = ()  # device files of the GPUs the container gets, in unit order
    note: str | None = None  # why none, where the job's GPUs could not be told


def grant(gpus, job, privileges):
    """The Grant for a container of `job` (None: outside any job) on a node with `gpus`
    (config.Gpus, or None where the node has none)."""
    if gpus is None:
        return Grant()
    try:
        devices = probe((*gpus.units, *gpus.shared), privileges)
    except SockerError as e:
        return Grant(note=f"the container gets no GPU: {e}")

    def filter_binds():
        with privileges.elevated():
            return devicefilter.binds(job)

    return decide(gpus, job, devices, filter_binds)


def decide(gpus, job, devices, filter_binds):
    """The Grant, from the probed `devices` ({path: usable}) and, where the kernel's verdict
    allows every unit, `filter_binds()`: whether a device filter binds the caller at all (raises
    SockerError if that cannot be told)."""
    if job is None:
        return Grant(gpus.outside_jobs)
    usable = tuple(unit for unit in gpus.units if devices[unit])
    if len(usable) < len(gpus.units):
        return Grant(usable)
    try:
        bound = filter_binds()
    except SockerError as e:
        return Grant((), f"the container gets no GPU: {e}")
    if bound:
        return Grant(usable)
    return Grant((), "the container gets no GPU: no device filter binds the job, so its GPUs cannot be "
                     "told (is ConstrainDevices=yes in Slurm's cgroup.conf?)")


def probe(paths, privileges):
    """{path: whether the kernel lets this process read and write it} for each device file in
    `paths`, judged as root from this process's cgroups."""
    found = {}
    with privileges.wholly_root():  # access(2) judges by the real uid
        for path in paths:
            real = os.path.realpath(path)
            try:
                st = os.stat(real)
            except OSError as e:
                raise SockerError(f"device {path}: {e.strerror}") from e
            if not stat.S_ISCHR(st.st_mode) or not real.startswith("/dev/"):
                raise SockerError(f"device {path} is not a character device in /dev")
            # Not in a directory others may write (/dev/shm), where the path could be made to lead elsewhere.
            unsafe = securefile.path_problems(os.path.dirname(real), "directory")
            if unsafe:
                raise SockerError(f"device {path}: {unsafe[0]}")
            found[path] = os.access(real, os.R_OK | os.W_OK)
    return found

