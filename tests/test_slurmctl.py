"""The controller's record of a job's GPUs, read from `scontrol -d show job`."""

import dataclasses

import pytest

from helpers import JOB
from socker import slurmctl
from socker.errors import SockerError

SHOW_JOB = """JobId=31 JobName=wrap
   JobState=RUNNING Reason=None Dependency=(null)
   NumNodes=3 NumCPUs=3 NumTasks=3 CPUs/Task=1 ReqB:S:C:T=0:0:*:*
   JOB_GRES=gpu:5
     Nodes=gpu[01-02] CPU_IDs=0 Mem=256 GRES=gpu:2(IDX:0-1)
     Nodes=gpu03 CPU_IDs=0 Mem=256 GRES=gpu:a100:1(IDX:3),nic:1(IDX:0)
   TresPerNode=gres:gpu:2
"""


@pytest.mark.parametrize("node, indices", [("gpu01", {0, 1}), ("gpu02", {0, 1}), ("gpu03", {3}), ("gpu04", set())])
def test_each_nodes_gpus_are_read_from_its_own_line(node, indices):
    assert slurmctl.gpu_indices(SHOW_JOB, node) == indices


def test_a_job_without_gres_holds_no_gpu():
    assert slurmctl.gpu_indices("     Nodes=vm CPU_IDs=0 Mem=256 GRES=\n", "vm") == set()


def test_lists_of_indices_and_ranges():
    assert slurmctl.gpu_indices("  Nodes=vm CPU_IDs=0 Mem=0 GRES=gpu:4(IDX:0,2-3,5)\n", "vm") == {0, 2, 3, 5}


@pytest.mark.parametrize("expression, names", [
    ("vm", ["vm"]), ("n[1-3,5],login", ["n1", "n2", "n3", "n5", "login"]), ("gpu[08-10]", ["gpu08", "gpu09", "gpu10"]),
    ("rack[1-2]-a", ["rack1-a", "rack2-a"])])
def test_hostlists_expand_as_slurm_writes_them(expression, names):
    assert slurmctl.expand_hostlist(expression) == names


def test_only_slurms_controller_is_asked():
    with pytest.raises(SockerError, match="only Slurm's controller"):
        slurmctl.holds_every_gpu(dataclasses.replace(JOB, scheduler="pbs"), 4, "/usr/bin/scontrol", "vm")


def test_a_failing_scontrol_is_an_error_with_its_last_line(tmp_path):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho 'scontrol: error: Invalid job id specified' >&2\nexit 1\n")
    scontrol.chmod(0o755)
    with pytest.raises(SockerError, match="scontrol show job 4242: scontrol: error: Invalid job id specified"):
        slurmctl.holds_every_gpu(JOB, 4, str(scontrol), "vm")


def test_a_job_holding_every_unit_of_the_node(tmp_path):
    scontrol = tmp_path / "scontrol"
    scontrol.write_text("#!/bin/sh\necho '     Nodes=vm CPU_IDs=0-1 Mem=256 GRES=gpu:4(IDX:0-3)'\n")
    scontrol.chmod(0o755)
    assert slurmctl.holds_every_gpu(JOB, 4, str(scontrol), "vm")
    assert not slurmctl.holds_every_gpu(JOB, 5, str(scontrol), "vm")
    assert not slurmctl.holds_every_gpu(JOB, 4, str(scontrol), "other")
