"""socker's end-of-job hook for PBS (OpenPBS, PBS Professional): what Slurm's socker-epilog
does, for PBS, which runs hooks rather than epilog scripts.

On every execution host at the end of a job (execjob_end), as root: remove every container
socker started for the job (labels socker=1, socker.job=<job id>), then socker's own sweep of the
state dead runs left, then the job's cgroup directories the engine made or left, where empty.
socker removes its containers itself, and its guardian if socker is killed; this is the safety
net for a job ended by qdel or its walltime before either could.

Install (as root, on the server):
    qmgr -c "create hook socker"
    qmgr -c "import hook socker application/x-python default /usr/local/share/socker/socker_pbs_hook.py"
    qmgr -c "set hook socker event = execjob_end"
    qmgr -c "set hook socker enabled = true"
"""

import glob
import os
import re
import subprocess

import pbs

DOCKER = ["docker", "-H", "unix:///var/run/docker.sock"]
SOCKER = "/usr/local/bin/socker"
JOB_ID = re.compile(r"[0-9]+(?:\[[0-9]*\])?\.[A-Za-z0-9.-]+\Z")


def job_containers(job):
    listed = subprocess.run(DOCKER + ["ps", "-aq", "--filter", "label=socker=1", "--filter",
                                      "label=socker.job=" + job], capture_output=True, text=True)
    return listed.stdout.split()


def remove_left_behind(job):
    for container in job_containers(job):
        if subprocess.run(DOCKER + ["rm", "-f", "-v", container], capture_output=True).returncode == 0:
            pbs.logjobmsg(job, "socker: removed container %s" % container[:12])
    if os.access(SOCKER, os.X_OK):
        subprocess.run([SOCKER, "sweep"], capture_output=True)
    # The job's directory in each hierarchy and what is below it, deepest first: the engine makes
    # the container's path in every hierarchy, those PBS does not use included. PBS's cgroups hook
    # has removed its own by now (execjob_epilogue).
    pattern = glob.escape(job)
    for top in glob.glob("/sys/fs/cgroup/*/pbs_jobs.service/jobid/" + pattern) + \
            glob.glob("/sys/fs/cgroup/pbs_jobs.service/jobid/" + pattern):
        for directory, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(directory)
            except OSError:
                pass  # a cgroup with processes or children stays


event = pbs.event()
try:
    if JOB_ID.match(event.job.id):
        remove_left_behind(event.job.id)
except Exception as e:  # a failed clean-up must not fail the job's end
    pbs.logjobmsg(event.job.id, "socker: end-of-job clean-up failed: %s" % e)
event.accept()
