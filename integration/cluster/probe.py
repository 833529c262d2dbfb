"""What a node of integration/cluster has, as JSON on stdout: run on the node as root (the tests
run it on either node through ssh).

    python3 probe.py [JOB]

  node        the node's name
  containers  socker's containers: id, job (its socker.job label), running, the SLURM_* variables
              socker copied into it, and where a running one's cgroup is (cgroup_layout.py)
  state       socker's state left in /run/socker (what conftest.py's nothing_left_behind checks)
  link, lo    bytes received and sent on the cluster link's interface and on the loopback
and with JOB: job_cgroups (the job's cgroup directories), task_cgroups (of its step 0), and
epilog (slurmd's log lines that say it ran the epilog for JOB: at SlurmdDebug=debug).
"""

import json
import re
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cgroup_layout  # noqa: E402
from helpers import STATE_DIR, docker, socker_containers  # noqa: E402

LINK = Path("/etc/socker-cluster-link")  # the link's interface, written by integration/cluster/node
SLURMD_LOG = Path("/var/log/slurm/slurmd.log")


def counters(interface):
    statistics = Path("/sys/class/net") / interface / "statistics"
    return {what: int((statistics / f"{what}_bytes").read_text()) for what in ("rx", "tx")}


def containers(layout):
    found = []
    for container in socker_containers():
        try:
            info = json.loads(docker("inspect", container))[0]
        except Exception:  # removed meanwhile
            continue
        running = bool(info["State"]["Running"] and info["State"]["Pid"])
        cgroup = None
        if running:
            try:
                cgroup = layout.container_cgroup(container)
            except (AssertionError, OSError):
                running = False
        environment = dict(entry.split("=", 1) for entry in info["Config"]["Env"] or [])
        found.append({"id": container, "job": info["Config"]["Labels"].get("socker.job"), "running": running,
                      "cgroup": cgroup, "slurm": {k: v for k, v in environment.items() if k.startswith("SLURM")}})
    return found


def main(job=None):
    layout = cgroup_layout.in_force()
    report = {
        "node": socket.gethostname(),
        "containers": containers(layout),
        "state": sorted(p.name for p in STATE_DIR.glob("*socker-*")),
        "link": counters(LINK.read_text().strip()),
        "lo": counters("lo"),
    }
    if job:
        report["job_cgroups"] = layout.job_cgroup_dirs(job)
        report["task_cgroups"] = layout.task_cgroups(job, 0)
        text = SLURMD_LOG.read_text(errors="replace") if SLURMD_LOG.exists() else ""
        report["epilog"] = re.findall(rf"^.*completed epilog for jobid {job}$", text, re.M)
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main(*sys.argv[1:2])
