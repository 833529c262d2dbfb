"""Container names (unique, valid for the engine, carrying the job for the epilog) and telling an OOM kill."""

import re

import pytest

from socker.host.cgroups import Placement
from socker.host.jobs import find_job
from socker.run.runner import _killed_for_memory, container_name

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


class _Engine:
    def __init__(self, oom_killed):
        self.oom_killed = oom_killed

    def state(self, container_id):
        return {"OOMKilled": self.oom_killed, "ExitCode": 137}


@pytest.mark.parametrize("engine_says, kills_before, kills_after, killed", [
    (True, None, None, True),    # the engine saw it (cgroup v1, or the container's own limit)
    (False, 0, 1, True),         # the job's limit was reached: only the job's count saw it
    (False, 2, 2, False),        # killed, but not for memory (a SIGKILL)
    (False, None, None, False),  # outside a job: the engine's word alone
    (False, 0, None, False),     # the count became unreadable: no claim
])
def test_an_oom_kill_is_told_by_the_engine_or_by_the_jobs_count(tmp_path, engine_says, kills_before,
                                                                 kills_after, killed):
    events = tmp_path / "memory.events"
    if kills_after is not None:
        events.write_text(f"low 0\nhigh 0\nmax 4\noom 1\noom_kill {kills_after}\n")
    placement = Placement("/job_1/step_0/user", (), None, str(events))
    assert _killed_for_memory(_Engine(engine_says), "c0ffee", placement, kills_before) is killed
