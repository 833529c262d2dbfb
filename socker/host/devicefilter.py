"""Whether a device filter of the scheduler's binds the caller: what lets the kernel's verdict on
each GPU stand for the job's allocation (`gpus`).

cgroup v1: the scheduler made the caller's devices cgroup (Slurm does with ConstrainDevices=yes),
so its path fits the job's layout and `jobs.find_job` kept it.
cgroup v2: a BPF device program binds the caller's cgroup, attached to it or above it, as the
kernel says (BPF_PROG_QUERY, effective programs). Only root attaches one, and below
system.slice/slurmstepd.scope only Slurm does.
"""

import ctypes
import os
import struct

from ..errors import SockerError
from .cgroups import CGROUP_ROOT

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_BPF_PROG_QUERY = 16
_BPF_CGROUP_DEVICE = 6
_BPF_F_QUERY_EFFECTIVE = 1
# union bpf_attr, as BPF_PROG_QUERY reads it: target_fd, attach_type, query_flags, attach_flags,
# prog_ids (NULL: count only), prog_cnt (the answer); the rest stays zero.
_QUERY = struct.Struct("=IIIIQI")
_ATTR_SIZE = 48


def binds(job, root=CGROUP_ROOT, count=None):
    """True if a device filter of the scheduler's binds the caller's cgroups in `job`. Needs root on
    cgroup v2 (the kernel answers a query of BPF programs to CAP_NET_ADMIN only)."""
    if not job.unified:
        return "devices" in job.cgroups
    return (count or device_programs)(os.path.join(root, job.cgroups[""].lstrip("/"))) > 0


def device_programs(cgroup):
    """How many BPF device programs bind the processes of the cgroup v2 directory `cgroup`."""
    number = _SYS_BPF.get(os.uname().machine)
    if number is None:
        raise SockerError(f"cannot ask the kernel for device filters on {os.uname().machine}")
    try:
        fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise SockerError(f"cannot open the cgroup {cgroup}: {e.strerror}") from e
    try:
        attr = ctypes.create_string_buffer(_ATTR_SIZE)
        _QUERY.pack_into(attr, 0, fd, _BPF_CGROUP_DEVICE, _BPF_F_QUERY_EFFECTIVE, 0, 0, 0)
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syscall(ctypes.c_long(number), ctypes.c_int(_BPF_PROG_QUERY), attr, ctypes.c_uint(_ATTR_SIZE)) != 0:
            raise SockerError(f"cannot ask the kernel which device filters bind {cgroup}: "
                              f"{os.strerror(ctypes.get_errno())}")
        return _QUERY.unpack_from(attr, 0)[5]
    finally:
        os.close(fd)
