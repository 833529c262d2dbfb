"""Run one authorised container: create, attach, start, stream, wait, remove.

The caller's side of the running container is a `session.Session`; the
`guardian.Guardian`, forked before the container exists, removes it if socker
dies without doing so itself (SIGKILL, OOM killer, a crash).
"""

import dataclasses
import os
import re
import secrets

from . import hostpaths, userdb
from .guardian import Guardian, tidy
from .model import Mount
from .session import Session, Signals

CHDIR_HELPER = "socker-chdir"  # packaging/socker-chdir.c


@dataclasses.dataclass(frozen=True)
class Launch:
    """Everything decided about one container before it is created."""
    spec: object  # model.ContainerSpec
    image: dict  # the image as the engine described it
    name: str  # from container_name
    placement: object  # cgroups.Placement
    descriptors: tuple  # the pinned sources of spec.mounts (hostpaths.pin), in order


def container_name(uid, job):
    """socker-UID-HEX, or socker-UID-jJOB-HEX in a job, so that the epilog finds the job's state."""
    job_part = f"j{re.sub(r'[^A-Za-z0-9_.-]', '_', job.job_id)}-" if job else ""
    return f"socker-{uid}-{job_part}{secrets.token_hex(6)}"


def run(launch, engine, record, identity, privileges):
    """Run the container; returns (exit status, whether it was OOM-killed). Leaves nothing behind."""
    name, placement = launch.name, launch.placement
    guardian = Guardian(name, placement, engine.socket_path, record, privileges)
    container_id = None
    try:
        extra_mounts = userdb.write(identity, name, privileges)
        with privileges.elevated():
            mounts = hostpaths.stage(launch.spec.mounts, launch.descriptors, userdb.state_directory(name))
        spec = dataclasses.replace(launch.spec, mounts=mounts)
        helper = chdir_helper()
        container_id = engine.create(spec, launch.image, name, (*extra_mounts, helper), placement.parent,
                                     helper.target)
        guardian.tell(container_id)
        record.note(container=container_id[:12])
        with Signals() as signals:
            status = Session(engine, container_id, spec, signals).run()
        return status, status == 137 and bool(engine.state(container_id).get("OOMKilled"))
    finally:
        removed = False
        try:
            engine.remove(container_id or name)
            removed = True
        finally:
            # If the engine failed to remove the container, the guardian tries again and tidies after it.
            try:
                if removed:
                    with privileges.elevated():
                        tidy(name, placement)
            finally:
                guardian.release(cleaned_up=removed)


def chdir_helper():
    """The mount that puts socker-chdir, from beside the socker binary, in the container (read-only)."""
    beside = os.path.join(os.path.dirname(os.path.realpath("/proc/self/exe")), CHDIR_HELPER)
    return Mount(beside, f"/.{CHDIR_HELPER}", True)
