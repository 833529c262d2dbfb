"""Whether a device filter binds the caller: Slurm's devices cgroup on v1, a BPF device program
on v2, counted by the kernel itself."""

import ctypes
import os
import platform
import struct
import uuid

import pytest

from helpers import JOB
from socker.host import devicefilter, jobs
from socker.errors import SockerError

UNIFIED = "/sys/fs/cgroup/unified"  # this machine's cgroup v2 hierarchy, beside the v1 ones


def test_v1_a_devices_cgroup_of_the_jobs_means_a_filter():
    leaf = "/slurm_vm/uid_1000/job_7/step_0/task_0"
    assert devicefilter.binds(jobs.find_job(f"5:devices:{leaf}\n4:memory:{leaf}\n", 1000))
    assert not devicefilter.binds(jobs.find_job(f"5:devices:/\n4:memory:{leaf}\n", 1000))


def test_v2_the_kernels_count_of_device_programs_on_the_callers_cgroup_decides():
    asked = []

    def count(path):
        asked.append(path)
        return len(asked) - 1

    assert not devicefilter.binds(JOB, root="/cg", count=count)
    assert devicefilter.binds(JOB, root="/cg", count=count)
    assert asked == ["/cg/system.slice/slurmstepd.scope/job_4242/step_0/user/task_0"] * 2


def test_a_cgroup_that_cannot_be_opened_is_an_error():
    with pytest.raises(SockerError, match="cannot open the cgroup /sys/fs/cgroup/unified/socker-missing"):
        devicefilter.device_programs(f"{UNIFIED}/socker-missing")


def _bpf(command, attr):
    libc = ctypes.CDLL(None, use_errno=True)
    result = libc.syscall(ctypes.c_long(devicefilter._SYS_BPF[platform.machine()]), ctypes.c_int(command), attr, ctypes.c_uint(len(attr)))
    assert result >= 0, os.strerror(ctypes.get_errno())
    return result


def _attach_allow_all_device_program(cgroup):
    """Load `r0 = 1; exit` as a BPF cgroup device program and attach it to `cgroup` (as a scheduler's)."""
    instructions = struct.pack("<BBhi", 0xb7, 0, 0, 1) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    code, license_ = ctypes.create_string_buffer(instructions, len(instructions)), ctypes.create_string_buffer(b"GPL")
    load = ctypes.create_string_buffer(128)
    struct.pack_into("=IIQQ", load, 0, 15, 2, ctypes.addressof(code), ctypes.addressof(license_))  # CGROUP_DEVICE
    program = _bpf(5, load)  # BPF_PROG_LOAD
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    attach = ctypes.create_string_buffer(32)
    struct.pack_into("=IIII", attach, 0, fd, program, 6, 2)  # BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI
    _bpf(8, attach)  # BPF_PROG_ATTACH
    os.close(fd)
    os.close(program)


@pytest.mark.root
def test_a_device_program_above_the_cgroup_is_counted_and_none_is_zero():
    top = os.path.join(UNIFIED, f"socker-unit-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(top)
    try:
        os.mkdir(os.path.join(top, "task_0"))
        assert devicefilter.device_programs(os.path.join(top, "task_0")) == 0
        _attach_allow_all_device_program(top)
        assert devicefilter.device_programs(os.path.join(top, "task_0")) == 1
        assert devicefilter.binds(JOB.replace(cgroups={"": "/task_0"}), root=top)
    finally:
        os.rmdir(os.path.join(top, "task_0"))
        os.rmdir(top)  # the program goes with its cgroup
