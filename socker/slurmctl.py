"""What Slurm's controller records of a job: the GPUs it holds on a node.

Asked through `scontrol -d show job`, run with every uid root's (the caller's process cannot trace
or signal it) and socker's own clean environment: no SLURM_CONF or other variable of the caller's
chooses the controller or the answer.
"""

import re
import subprocess

from .errors import SockerError

_TIMEOUT = 10
# One line per group of nodes in `scontrol -d show job`: "Nodes=n[1-2] CPU_IDs=0-3 Mem=0 GRES=gpu:2(IDX:0-1)"
_NODE_LINE = re.compile(r"^\s*Nodes=(?P<nodes>\S+)\s.*\bGRES=(?P<gres>\S*)", re.MULTILINE)
# gpu:2(IDX:0-1), gpu:a100:2(IDX:0,2), among other GRES separated by commas
_GPUS = re.compile(r"(?:^|,)gpu(?::[^:(,]+)?:\d+\(IDX:(?P<indices>[0-9,-]*)\)")


def holds_every_gpu(job, unit_count, scontrol, node):
    """True if the controller records `job` as holding GPUs 0..unit_count-1 of `node`. Call it with
    every uid root's (`Privileges.wholly_root`)."""
    if job.scheduler != "slurm":
        raise SockerError(f"socker asks only Slurm's controller, and this is a {job.scheduler} job")
    return gpu_indices(_show_job(job.job_id, scontrol), node) == set(range(unit_count))


def gpu_indices(show_job, node):
    """The indices of the GPUs that `scontrol -d show job` output records on `node`."""
    indices = set()
    for line in _NODE_LINE.finditer(show_job):
        if node in expand_hostlist(line["nodes"]):
            for gpus in _GPUS.finditer(line["gres"]):
                indices |= _expand_numbers(gpus["indices"])
    return indices


def expand_hostlist(expression):
    """Slurm's hostlist: "n[1-3,5],login" is n1, n2, n3, n5 and login."""
    names = []
    for name in re.findall(r"[^,\[]+(?:\[[^\]]*\][^,\[]*)*", expression):
        match = re.fullmatch(r"(?P<prefix>[^\[]*)\[(?P<ranges>[^\]]*)\](?P<suffix>[^\[\]]*)", name)
        if not match:
            names.append(name)
            continue
        for part in match["ranges"].split(","):
            first, _, last = part.partition("-")
            width = len(first)
            for number in range(int(first), int(last or first) + 1):
                names.append(f"{match['prefix']}{number:0{width}d}{match['suffix']}")
    return names


def _expand_numbers(ranges):
    numbers = set()
    for part in filter(None, ranges.split(",")):
        first, _, last = part.partition("-")
        numbers |= set(range(int(first), int(last or first) + 1))
    return numbers


def _show_job(job_id, scontrol):
    try:
        done = subprocess.run([scontrol, "-d", "show", "job", job_id], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        raise SockerError(f"{scontrol}: {e}") from e
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SockerError(f"scontrol show job {job_id}: {last}")
    return done.stdout
