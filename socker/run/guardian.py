"""The guardian: with the puller (`puller`), the part of socker that keeps root for good.

A child forked with every uid 0 before the container exists, so that the
caller can never signal it. It learns the container's ID through a pipe. It
tidies what socker made on the host for the run (staged mounts, the state
directory, cgroup directories) and then checks that nothing is left: with a
descriptor table of its own, not limited by the caller. If the pipe ends
without socker's word that it removed the container (socker was killed,
crashed, or the engine failed it), the guardian removes the container first.

It holds the state directory's lock (inherited at the fork) while it lives,
so that `socker sweep` never takes a run's state from under it.
"""

import os
import time

from ..engine import Engine
from ..errors import EngineError
from ..host import cgroups, hostpaths, statedir
from ..host.privileges import detach

# The engine may still be creating the container when socker dies: the guardian keeps
# looking for it by name this long before it concludes there is nothing to remove.
_PATIENCE = 10.0


class Guardian:
    """Forked at construction, keeping `lock_fd`; `tell` it the container's ID, `release` it at the end."""

    def __init__(self, name, placement, record, *, socket_path, privileges, lock_fd):
        read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self.pid = privileges.fork_root_child()
        if self.pid == 0:
            os.close(self._write_fd)
            clean = False
            try:
                clean = _guard(read_fd, lock_fd, name=name, placement=placement, engine=Engine(socket_path, privileges),
                               record=record)
            finally:
                os._exit(0 if clean else 1)
        os.close(read_fd)

    def tell(self, container_id):
        os.write(self._write_fd, f"id {container_id}\n".encode())

    def release(self, removed):
        """Let the guardian tidy up. If socker `removed` the container, wait for it and return whether
        nothing is left; else it goes on alone, for as long as the engine keeps it waiting (None)."""
        try:
            if removed:
                os.write(self._write_fd, b"removed\n")
        finally:
            os.close(self._write_fd)
        if not removed:
            return None
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status) == 0


def tidy(name, placement):
    """Remove what socker made on the host for run `name`; returns what could not be removed. Needs root."""
    directory = statedir.path(name)
    hostpaths.unstage(os.path.join(directory, statedir.MOUNTS))
    statedir.remove(name)
    cgroups.remove_if_empty(placement.created)
    return statedir.left_behind(name)


def _guard(read_fd, lock_fd, *, name, placement, engine, record):
    """The guardian's life; True if nothing of the run is left on the host."""
    detach(read_fd, lock_fd)
    messages = b""
    while chunk := os.read(read_fd, 4096):
        messages += chunk
    lines = messages.decode().splitlines()
    if "removed" in lines:
        return _tidy_or_record(name, placement, record)
    container_id = next((line[3:] for line in lines if line.startswith("id ")), None)
    deadline = time.monotonic() + _PATIENCE
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            gone = remove_container(engine, container_id, name)  # until the deadline, if not yet created
        except EngineError:
            pass
        if not gone:
            time.sleep(0.2)
    record.note(container=audited_name(container_id, name), status=None)
    if not gone and container_id is not None:  # its state stays, for the epilog or the sweep
        record.failed("the engine did not remove the container")
        return False
    clean = _tidy_or_record(name, placement, record)
    if clean:
        record.killed()
    return clean


def remove_container(engine, container_id, name):
    """Remove run `name`'s container: by the ID the engine gave it, else by its name. True once it
    is gone. Not found by name alone may mean not created yet (a create interrupted or still in
    the engine), so that is not gone; not found by ID is."""
    return engine.remove(container_id or name) or container_id is not None


def audited_name(container_id, name):
    """How the audit record names the container: by its short ID, or by its whole name where socker
    died before the engine gave one (a name cut short could be another run's)."""
    return container_id[:12] if container_id else name


def _tidy_or_record(name, placement, record):
    left = tidy(name, placement)
    if left:
        record.failed(f"left on the host for 'socker sweep': {' '.join(left)}")
    return not left

