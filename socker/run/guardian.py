"""The guardian: with the puller (`puller`), the part of socker that keeps root for good.

A child forked with every uid 0 before the container exists, so that the
caller can never signal it. It learns the container's ID through a pipe. It
tidies what socker made on the host for the run (staged mounts, the state
directory, cgroup directories) and then checks that nothing is left: with a
descriptor table of its own, not limited by the caller. If the pipe ends
without socker's word that it removed the container (socker was killed,
crashed, or the engine failed it), the guardian removes the container first.

The guardian writes the run's end record (`lifecycle.Trail`, the copy forked
with it): the result socker sent it through the pipe, or `killed` where socker
ended without sending one, with `left` naming whatever could not be removed.
The caller cannot kill it outside jobs, so every run that got this far ends in
the audit trail.

It holds the state directory's lock (inherited at the fork) while it lives,
so that `socker sweep` never takes a run's state from under it.
"""

import json
import os
import time

from ..engine import Engine
from ..errors import EngineError
from ..host.privileges import detach
from .lifecycle import remove_container, tidy

# The engine may still be creating the container when socker dies: the guardian keeps
# looking for it by name this long before it concludes there is nothing to remove.
_PATIENCE = 10.0


class Guardian:
    """Forked at construction, keeping `lock_fd`; `tell` it the container's ID, `release` it at the end."""

    def __init__(self, name, placement, trail, *, socket_path, privileges, lock_fd):
        read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self.pid = privileges.fork_root_child()
        if self.pid == 0:
            os.close(self._write_fd)
            clean = False
            try:
                clean = _guard(read_fd, lock_fd, name=name, placement=placement, engine=Engine(socket_path, privileges),
                               trail=trail)
            finally:
                os._exit(0 if clean else 1)
        os.close(read_fd)

    def tell(self, container_id):
        os.write(self._write_fd, f"id {container_id}\n".encode())

    def tell_end(self, result, fields):
        """How the run ended (lifecycle.Trail's result and fields), for the guardian to write."""
        os.write(self._write_fd, f"end {json.dumps({'result': result, 'fields': fields})}\n".encode())

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


def _guard(read_fd, lock_fd, *, name, placement, engine, trail):
    """The guardian's life; True if nothing of the run is left on the host."""
    detach(read_fd, lock_fd)
    messages = b""
    while chunk := os.read(read_fd, 4096):
        messages += chunk
    lines = messages.decode(errors="replace").splitlines()
    container_id = next((line[3:] for line in lines if line.startswith("id ")), None)
    end = next((_end_said(line[4:]) for line in lines if line.startswith("end ")), None)
    if container_id:
        trail.identified(container_id)
    gone = "removed" in lines
    deadline = time.monotonic() + _PATIENCE
    while not gone and time.monotonic() < deadline:
        try:
            gone = remove_container(engine, container_id, name)  # until the deadline, if not yet created
        except EngineError:
            pass
        if not gone:
            time.sleep(0.2)
    if not gone and container_id is not None:  # its state stays, for the epilog or the sweep
        left = [f"container {container_id[:12]} (the engine did not remove it)"]
    else:
        try:
            left = tidy(name, placement)
        except Exception as e:  # the end is written whatever happened here
            left = [f"the run's state (tidying failed: {e!r})"]
    if end is None:  # socker is gone without a word of how the run ended
        end = {"result": "killed", "fields": {"reason": "socker ended first; its guardian removed the container" if gone
                                              else "socker ended before the engine created a container"}}
    trail.write_end(end["result"], end["fields"], left)
    return not left


def _end_said(text):
    """The end socker sent, or None where socker died in the middle of sending it."""
    try:
        end = json.loads(text)
        return end if isinstance(end, dict) and isinstance(end.get("fields"), dict) else None
    except ValueError:
        return None
