"""Which GPUs a container gets: the units the caller's job holds on this node, from sources the
caller cannot bend.

Never from a variable (CUDA_VISIBLE_DEVICES, SLURM_JOB_GPUS, SLURM_STEP_GPUS, NVIDIA_*): the
caller sets those. The kernel's verdict comes first. The scheduler's device filter binds the
caller's own cgroup, which socker's process is in, so root's access(2) to each unit says which
ones the job's step or task holds (a denied one fails with EPERM whoever asks). A filter that
denies some unit shows that a filter binds. One that allows every unit may be no filter at all
(ConstrainDevices=no), so then the controller must confirm that the job holds them all, or the
container gets none.

The container gets exactly those device files and the shared ones, the driver's libraries
read-only, and the admin's variables numbering its GPUs 0..n-1. Nothing else would bind it on
cgroup v2: the engine's device filter for the container replaces the job's.
"""

import os
import stat
from dataclasses import dataclass

from . import slurmctl
from .errors import SockerError


@dataclass(frozen=True)
class Device:
    path: str  # as configured
    number: tuple  # (major, minor) of the character device
    usable: bool  # the kernel lets this process read and write it


@dataclass(frozen=True)
class Grant:
    units: tuple = ()  # device files of the GPUs the container gets, in unit order
    numbers: tuple = ()  # (major, minor) of every configured device: what a v1 job must let containers mknod
    note: str | None = None  # why none, where the job's GPUs could not be told


def grant(gpus, job, privileges, node=None):
    """The Grant for a container of `job` (None: outside any job) on a node with `gpus`
    (config.Gpus, or None where the node has none)."""
    if gpus is None:
        return Grant()
    try:
        devices = probe((*gpus.units, *gpus.shared), privileges)
    except SockerError as e:
        return Grant(note=f"the container gets no GPU: {e}")

    def job_holds_every_unit():
        with privileges.wholly_root():
            return slurmctl.holds_every_gpu(job, len(gpus.units), gpus.scontrol, node or os.uname().nodename)

    return decide(gpus, job, devices, job_holds_every_unit)


def decide(gpus, job, devices, job_holds_every_unit):
    """The Grant, from the probed `devices` ({path: Device}) and, where the kernel's verdict cannot
    tell a filter from none, `job_holds_every_unit()`: the controller's word (raises SockerError)."""
    numbers = tuple(device.number for device in devices.values())
    if job is None:
        return Grant(gpus.outside_jobs, numbers)
    usable = tuple(unit for unit in gpus.units if devices[unit].usable)
    if len(usable) < len(gpus.units):
        return Grant(usable, numbers)
    try:
        confirmed = job_holds_every_unit()
    except SockerError as e:
        return Grant((), numbers, f"the container gets no GPU: the controller cannot confirm the job's: {e}")
    if confirmed:
        return Grant(usable, numbers)
    return Grant((), numbers, "the container gets no GPU: the job's device filter lets it use GPUs it was not "
                              "given (is ConstrainDevices=yes in Slurm's cgroup.conf?)")


def probe(paths, privileges):
    """{path: Device} for each device file in `paths`, judged as root from this process's cgroups."""
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
            number = (os.major(st.st_rdev), os.minor(st.st_rdev))
            found[path] = Device(path, number, os.access(real, os.R_OK | os.W_OK))
    return found

