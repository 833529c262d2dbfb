"""cgroup v1: containers start beside a job's denied devices, by the m bit of those denials alone."""

import os
import stat

import pytest

from fake_engine_api import FakePrivileges
from socker.host import devicedenials
from socker.host.devicedenials import allow_mknod, denied
from socker.errors import JobError
from socker.host.jobs import find_job

LEAF_V2 = "/system.slice/slurmstepd.scope/job_42/step_0/user/task_0"


def test_the_devices_the_kernel_denies_are_found_by_kind_and_number():
    assert denied(usable=lambda path: path not in ("/dev/null", "/dev/zero")) == (("c", 1, 3), ("c", 1, 5))


def test_every_device_of_dev_is_asked_about_and_nothing_else():
    asked = []
    assert denied(usable=lambda path: asked.append(path) or True) == ()
    assert "/dev/null" in asked and "/dev/zero" in asked
    assert all(stat.S_ISCHR(os.lstat(path).st_mode) or stat.S_ISBLK(os.lstat(path).st_mode) for path in asked)


def test_no_link_is_followed_and_no_other_file_system_is_walked():
    asked = []
    denied(usable=lambda path: asked.append(path) or True)
    others = [mount.split()[1] for mount in open("/proc/self/mounts") if mount.split()[1].startswith("/dev/")]
    assert others  # /dev/shm, /dev/pts: what users may write lies there
    assert not [path for path in asked if any(path.startswith(other + "/") for other in others)]
    assert not [path for path in asked if os.path.islink(path)]


@pytest.mark.root
def test_a_device_file_behind_a_link_is_not_asked_about(tmp_path):
    top = tmp_path / "dev"
    (top / "sub").mkdir(parents=True)
    os.mknod(top / "sub" / "gpu", 0o600 | stat.S_IFCHR, os.makedev(1, 50))
    os.symlink("/dev/null", top / "null")
    os.symlink(str(top / "sub"), top / "linked")
    assert denied(str(top), usable=lambda path: False) == (("c", 1, 50),)


def test_a_dev_that_cannot_be_read_is_an_error(tmp_path):
    with pytest.raises(JobError, match="cannot tell which devices the job denies: .*absent: No such file"):
        denied(str(tmp_path / "absent"))


def test_v1_the_m_bit_of_each_denied_device_is_allowed_from_the_job_down_to_the_task(tmp_path):
    leaf = "/slurm_vm/uid_1000/job_7/step_0/task_1"
    job = find_job(f"5:devices:{leaf}\n4:memory:{leaf}\n", 1000)
    levels = ["slurm_vm", "slurm_vm/uid_1000", "slurm_vm/uid_1000/job_7", "slurm_vm/uid_1000/job_7/step_0",
              "slurm_vm/uid_1000/job_7/step_0/task_1"]
    for level in levels:
        (tmp_path / "devices" / level).mkdir(parents=True)
        (tmp_path / "devices" / level / "devices.allow").write_text("")
    allow_mknod(job, (("b", 8, 0), ("c", 195, 255)), root=str(tmp_path))
    assert [(tmp_path / "devices" / level / "devices.allow").read_text() for level in levels] == [
        "", "", *["b 8:0 mc 195:255 m"] * 3]


@pytest.mark.parametrize("leaf, own", [
    ("/lsf/cluster1/job.42.0.1700000000/sub", "lsf/cluster1/job.42.0.1700000000"),
    ("/torque/42.head/sub", "torque/42.head"),
    ("/pbspro/42.head", "pbspro/42.head"),
])
def test_every_schedulers_job_cgroup_is_found_from_its_layout(tmp_path, leaf, own):
    job = find_job(f"5:devices:{leaf}\n", 1000)
    levels = [own, leaf.strip("/")]
    for level in levels:
        (tmp_path / "devices" / level).mkdir(parents=True, exist_ok=True)
        (tmp_path / "devices" / level / "devices.allow").write_text("")
    allow_mknod(job, (("c", 1, 50),), root=str(tmp_path))
    assert [(tmp_path / "devices" / level / "devices.allow").read_text() for level in dict.fromkeys(levels)] == [
        "c 1:50 m"] * len(set(levels))
    assert (tmp_path / "devices" / own.rsplit("/", 1)[0] / "devices.allow").exists() is False


def test_nothing_is_asked_or_written_where_the_job_has_no_devices_cgroup_or_on_v2(tmp_path, monkeypatch):
    monkeypatch.setattr(devicedenials, "denied", lambda: pytest.fail("the devices were asked about"))
    devicedenials.allow_containers(find_job("4:memory:/slurm_vm/uid_1000/job_7/step_0\n", 1000), FakePrivileges(),
                                   root=str(tmp_path))
    devicedenials.allow_containers(find_job(f"0::{LEAF_V2}\n", 1001), FakePrivileges(), root=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_nothing_is_written_where_the_job_denies_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(devicedenials, "denied", lambda: ())
    devicedenials.allow_containers(find_job("5:devices:/slurm_vm/uid_1000/job_7/step_0\n", 1000), FakePrivileges(),
                                   root=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_v1_a_job_cgroup_that_is_gone_is_an_error(tmp_path):
    job = find_job("5:devices:/slurm_vm/uid_1000/job_7/step_0\n", 1000)
    with pytest.raises(JobError, match="cannot let the container start beside the job's denied devices"):
        allow_mknod(job, (("c", 1, 50),), root=str(tmp_path))
