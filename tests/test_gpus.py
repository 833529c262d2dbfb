"""Which GPUs a container gets: the kernel's verdict, where a device filter binds the caller; never a
variable; and nothing where that cannot be told."""

import os
import stat

import pytest

from helpers import JOB
from fake_engine_api import FakePrivileges
from socker import config
from socker.host import gpus
from socker.errors import SockerError

UNITS = ("/dev/gpu0", "/dev/gpu1", "/dev/gpu2", "/dev/gpu3")
GPUS = config.from_document({"images": ["busybox"], "gpus": {
    "units": list(UNITS), "shared": ["/dev/gpuctl"], "outside_jobs": ["/dev/gpu3"]}}).gpus


def probed(*usable):
    return {**{unit: unit in usable for unit in UNITS}, "/dev/gpuctl": True}


def never_asked():
    raise AssertionError("the filter was looked for where the kernel's verdict was enough")


def filter_binds(answer):
    def binds():
        if isinstance(answer, Exception):
            raise answer
        return answer
    return binds


def test_a_job_gets_the_units_its_filter_allows_and_nothing_more_is_asked():
    assert gpus.decide(GPUS, JOB, probed("/dev/gpu1", "/dev/gpu3"), never_asked) == gpus.Grant(
        ("/dev/gpu1", "/dev/gpu3"))


def test_a_job_whose_filter_allows_no_unit_gets_none_and_no_note():
    assert gpus.decide(GPUS, JOB, probed(), never_asked) == gpus.Grant()


def test_a_filter_that_allows_every_unit_counts_only_if_a_filter_binds():
    assert gpus.decide(GPUS, JOB, probed(*UNITS), filter_binds(True)) == gpus.Grant(UNITS)


def test_no_filter_is_never_taken_for_one_that_allows_everything():
    grant = gpus.decide(GPUS, JOB, probed(*UNITS), filter_binds(False))
    assert grant.units == () and grant.note == (
        "the container gets no GPU: no device filter binds the job, so its GPUs cannot be told "
        "(is ConstrainDevices=yes in Slurm's cgroup.conf?)")


def test_a_filter_that_cannot_be_looked_for_means_no_gpu_and_says_why():
    grant = gpus.decide(GPUS, JOB, probed(*UNITS), filter_binds(SockerError("cannot open the cgroup X")))
    assert grant.units == () and grant.note == "the container gets no GPU: cannot open the cgroup X"


def test_outside_jobs_the_admins_list_whatever_the_kernel_says():
    assert gpus.decide(GPUS, None, probed(), never_asked).units == ("/dev/gpu3",)


def test_a_node_without_gpus_configured_gives_nothing_and_probes_nothing():
    assert gpus.grant(None, JOB, FakePrivileges()) == gpus.Grant()


def test_a_missing_device_means_no_gpu_with_its_reason():
    settings = config.from_document({"images": ["busybox"], "gpus": {"units": ["/dev/socker-missing-gpu"]}}).gpus
    grant = gpus.grant(settings, JOB, FakePrivileges())
    assert grant == gpus.Grant(note="the container gets no GPU: device /dev/socker-missing-gpu: "
                                    "No such file or directory")


def test_the_probe_reports_whether_a_character_device_is_usable():
    assert gpus.probe(["/dev/null"], FakePrivileges()) == {"/dev/null": True}


@pytest.mark.root
def test_the_probe_refuses_a_device_outside_dev_whatever_link_leads_there(tmp_path):
    outside = tmp_path / "gpu"
    os.mknod(outside, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(SockerError, match="not a character device in /dev"):
        gpus.probe([str(outside)], FakePrivileges())


def test_the_probe_refuses_what_is_not_a_character_device():
    with pytest.raises(SockerError, match="/dev/shm is not a character device in /dev"):
        gpus.probe(["/dev/shm"], FakePrivileges())


@pytest.mark.root
def test_the_probe_refuses_a_device_in_a_directory_others_may_write():
    path = f"/dev/shm/socker-unit-test-gpu-{os.getpid()}"
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    try:
        with pytest.raises(SockerError, match=r"/dev/shm: directory is writable by group or others \(mode 1777\)"):
            gpus.probe([path], FakePrivileges())
    finally:
        os.unlink(path)
