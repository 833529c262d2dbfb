"""Run one authorised container: create, attach, start, stream, wait, remove.

The caller's side of the running container is a `session.Session`; the
`guardian.Guardian`, forked before the container exists, tidies the host
after it, and removes the container itself if socker dies without doing so
(SIGKILL, OOM killer, a crash).
"""

import os
import re
import secrets
import sys

from ..errors import EngineError, SockerError, TimedOut
from ..host import cgroups, hostpaths, statedir, userdb
from ..model import Mount
from ..value import Value
from .guardian import Guardian
from .lifecycle import remove_container
from .session import Session, Signals, hold_signals, release_signals, terminal_size

CHDIR_HELPER = "socker-chdir"  # packaging/socker-chdir.c


class Launch(Value):
    """Everything decided about one container before it is created."""
    spec: object  # model.ContainerSpec
    image: dict  # the image as the engine described it
    name: str  # from container_name
    placement: object  # cgroups.Placement
    descriptors: object  # hostpaths.Pinned: the sources of spec.mounts, in order


def container_name(uid, job):
    """socker-UID-HEX, or socker-UID-jJOB-HEX in a job, so that the epilog finds the job's state."""
    job_part = f"j{re.sub(r'[^A-Za-z0-9_.-]', '_', job.job_id)}-" if job else ""
    return f"socker-{uid}-{job_part}{secrets.token_hex(6)}"


def run(launch, engine, trail, identity, privileges):
    """Run the container; returns (exit status, whether it was OOM-killed). Leaves nothing behind.
    The caller closes `launch.descriptors`. From the guardian's fork on, `trail` ends through the
    guardian, which writes the run's end record once it has removed what the run left."""
    name = launch.name
    lock_fd = None
    # A ^C from here until the cleanup below is armed would leave a state directory no guardian
    # tidies, or a guardian that ends the run while socker ends it too: it waits until then.
    callers_mask = hold_signals()
    try:
        with privileges.elevated():
            lock_fd = statedir.create(name)
        try:
            guardian = Guardian(name, launch.placement, trail, socket_path=engine.socket_path, privileges=privileges,
                                lock_fd=lock_fd)
        except BaseException:
            with privileges.elevated():
                statedir.remove(name)  # nothing is in it yet, and no guardian to tidy it
            raise
        trail.hand_to(guardian)
        container_id = None
        may_exist = True  # until the create's outcome is known
        oom_kills_before = cgroups.oom_kills(launch.placement)
        try:
            with trail.ends_if_raised():  # before the guardian is released, which writes the end
                release_signals(callers_mask)  # a ^C that came meanwhile arrives here
                try:
                    container_id = _create(launch, engine, identity, privileges)
                except SockerError as e:
                    may_exist = isinstance(e, TimedOut)  # socker's own failure, or the engine's answer: no container
                    raise
                guardian.tell(container_id)
                trail.created(container_id)
                with Signals() as signals:
                    status = Session(engine, container_id, launch.spec, signals).run()
                trail.exited(status)
            return status, status == 137 and _killed_for_memory(engine, container_id, launch.placement,
                                                                oom_kills_before)
        finally:
            hold_signals()
            removed = False
            try:
                # What may still come into being, the guardian looks for until the engine is done.
                removed = remove_container(engine, container_id, name) or not may_exist
            except EngineError:
                pass  # the guardian tries again
            if guardian.release(removed) is False:
                print(f"socker: could not remove everything socker made for container {name}; "
                      "'socker sweep' (as root) removes it", file=sys.stderr)
    finally:
        if lock_fd is not None:
            os.close(lock_fd)


def _killed_for_memory(engine, container_id, placement, oom_kills_before):
    """Whether the container's SIGKILL was the kernel's for memory: the engine says so, or the job
    counted a kill below the container's parent while it ran (the engine misses some of those)."""
    if engine.state(container_id).get("OOMKilled"):
        return True
    after = cgroups.oom_kills(placement)
    return None not in (oom_kills_before, after) and after > oom_kills_before


def _create(launch, engine, identity, privileges):
    """Stage the mounts and the identity files, and create the container; returns its ID."""
    identity_files = userdb.write(identity, launch.name, privileges)
    with privileges.elevated():
        mounts = hostpaths.stage(launch.spec.mounts, launch.descriptors,
                                 os.path.join(statedir.path(launch.name), statedir.MOUNTS))
    helper = chdir_helper()
    spec = launch.spec.replace(mounts=mounts)
    return engine.create(spec, launch.image, launch.name, extra_mounts=(*identity_files, helper),
                         cgroup_parent=launch.placement.parent, chdir=helper.target,
                         terminal_size=terminal_size() if spec.tty else None)


def chdir_helper():
    """The mount that puts socker-chdir, from beside the socker binary, in the container (read-only)."""
    beside = os.path.join(os.path.dirname(os.path.realpath("/proc/self/exe")), CHDIR_HELPER)
    return Mount(beside, f"/.{CHDIR_HELPER}", True)
