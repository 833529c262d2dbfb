"""Container names: unique, valid for the engine, and carrying the job for the epilog."""

import re

import pytest

from socker.jobs import find_job
from socker.runner import container_name

VALID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+\Z")  # the engine's rule for names


@pytest.mark.parametrize("record, expected", [
    ("4:memory:/slurm_n/uid_1001/job_42/step_0/task_0\n", r"socker-1001-j42-[0-9a-f]{12}\Z"),
    ("0::/pbs_jobs.service/jobid/12[3].srv\n", r"socker-1001-j12_3_.srv-[0-9a-f]{12}\Z"),
    ("0::/user.slice\n", r"socker-1001-[0-9a-f]{12}\Z"),
])
def test_names(record, expected):
    name = container_name(1001, find_job(record, 1001))
    assert re.match(expected, name) and VALID.match(name)


def test_names_are_unique():
    assert len({container_name(1001, None) for _ in range(1000)}) == 1000
