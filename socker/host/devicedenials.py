"""cgroup v1: a container starts in a job whose devices cgroup denies some devices.

runc gives every container "c *:* m" and "b *:* m" (mknod of any device), and the v1 kernel
refuses a child a rule that its parent denies in any part: below a job that denies a device with
its m bit, no container starts. Slurm denies a job, its steps and its tasks the gres devices
(GPUs) they do not hold with "rwm", so on a GPU node with ConstrainDevices=yes this is nearly
every job, whether socker is told of the node's GPUs or not.

So socker asks the kernel which device files of /dev the caller's cgroup denies (root's access(2)
fails only for the device cgroup's verdict) and takes the m bit out of those denials, from the
job's devices cgroup down to the caller's. Making a device node needs CAP_MKNOD, which nothing in
a job has; reading and writing the denied devices stay denied.
"""

import os
import stat

from ..errors import JobError
from .cgroups import CGROUP_ROOT


def allow_containers(job, privileges, root=CGROUP_ROOT):
    """Let containers of `job` start beside the devices its cgroups deny to the caller."""
    if job.unified or "devices" not in job.cgroups:
        return
    with privileges.wholly_root():  # access(2) judges by the real uid
        numbers = denied()
    if numbers:
        with privileges.elevated():
            allow_mknod(job, numbers, root)


def denied(top="/dev", usable=lambda path: os.access(path, os.R_OK | os.W_OK)):
    """(kind, major, minor) of each device file below `top` that `usable` says no to, sorted.

    Only `top`'s own file system is walked (not /dev/shm or /dev/pts, which hold no device the
    scheduler denies), and no symbolic link is followed."""
    found = set()
    try:
        device = os.lstat(top).st_dev
        pending = [top]
        while pending:
            for st, path in _entries(pending.pop()):
                if st.st_dev != device:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    pending.append(path)
                elif (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)) and not usable(path):
                    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                    found.add((kind, os.major(st.st_rdev), os.minor(st.st_rdev)))
    except OSError as e:
        raise JobError(f"cannot tell which devices the job denies: {top}: {e.strerror}") from e
    return tuple(sorted(found))


def _entries(directory):
    """(lstat, path) of each entry of `directory` that is still there: udev adds and removes device
    files as it likes."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    yield entry.stat(follow_symlinks=False), entry.path
                except FileNotFoundError:
                    continue
    except FileNotFoundError:
        return


def allow_mknod(job, numbers, root=CGROUP_ROOT):
    """Allow the m bit of each (kind, major, minor) in `numbers` from `job`'s devices cgroup down to
    the caller's: in a cgroup that allows by default, that takes it out of the denial. Needs root."""
    components = [part for part in job.cgroups["devices"].split("/") if part]
    top = len([part for part in job.own_cgroup("devices").split("/") if part])
    for depth in range(top, len(components) + 1):  # each level copies its parent's rules when made
        path = os.path.join(root, "devices", *components[:depth], "devices.allow")
        try:
            with open(path, "w") as f:
                for kind, major, minor in numbers:
                    f.write(f"{kind} {major}:{minor} m")
                    f.flush()  # one rule per write: the kernel reads one
        except OSError as e:
            raise JobError(f"cannot let the container start beside the job's denied devices ({path}): "
                           f"{e.strerror}") from e
