"""The guardian: the one part of socker that keeps root for good.

A child forked with every uid 0 before the container exists, so that the
caller can never signal it. It learns the container's ID through a pipe; if
the pipe ends without socker's word that it removed the container itself
(socker was killed, crashed, or the engine failed it), the guardian removes
the container and tidies what socker left on the host, and records how the
run ended.
"""

import os
import signal
import time

from . import cgroups, hostpaths, userdb
from .engine import Engine
from .errors import EngineError
from .session import FORWARDED_SIGNALS

# The engine may still be creating the container when socker dies: the guardian keeps
# looking for it by name this long before it concludes there is nothing to remove.
_PATIENCE = 10.0


class Guardian:
    """Forked at construction; `tell` it the container's ID, `release` it at the end."""

    def __init__(self, name, placement, socket_path, record, privileges):
        read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self.pid = privileges.fork_root_child()
        if self.pid == 0:
            os.close(self._write_fd)
            try:
                _guard(read_fd, name, placement, Engine(socket_path, privileges), record)
            finally:
                os._exit(0)
        os.close(read_fd)

    def tell(self, container_id):
        os.write(self._write_fd, f"id {container_id}\n".encode())

    def release(self, cleaned_up):
        """Let the guardian go: with nothing to do if socker `cleaned_up` itself, and then
        reaped; else it goes on alone, for as long as the engine keeps it waiting."""
        try:
            if cleaned_up:
                os.write(self._write_fd, b"done\n")
        finally:
            os.close(self._write_fd)
            if cleaned_up:
                os.waitpid(self.pid, 0)


def tidy(name, placement):
    """Remove what socker created on the host for container `name`; needs root."""
    hostpaths.unstage(userdb.state_directory(name))
    userdb.remove(name)
    cgroups.remove_if_empty(placement.created)


def _guard(read_fd, name, placement, engine, record):
    os.setsid()  # out of the terminal's process group: no ^C, no SIGHUP
    for sig in (*FORWARDED_SIGNALS, signal.SIGWINCH, signal.SIGPIPE, signal.SIGTSTP,
                signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())  # blocked since the fork, ignored from now on
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)  # keep no pipe of the caller's open
    os.closerange(3, read_fd)
    os.closerange(read_fd + 1, null)
    os.closerange(null + 1, os.sysconf("SC_OPEN_MAX"))
    os.chdir("/")  # keep no directory of the caller's busy
    messages = b""
    while chunk := os.read(read_fd, 4096):
        messages += chunk
    lines = messages.decode().splitlines()
    if "done" in lines:
        return
    container_id = next((line[3:] for line in lines if line.startswith("id ")), None)
    deadline = time.monotonic() + _PATIENCE
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            # Not found by name alone may mean not created yet: look again until the deadline.
            gone = engine.remove(container_id or name) or container_id is not None
        except EngineError:
            pass
        if not gone:
            time.sleep(0.2)
    record.note(container=(container_id or name)[:12], status=None)
    if gone or container_id is None:
        tidy(name, placement)
        record.killed()
    else:  # its state stays, for the epilog or the administrator
        record.failed("the engine did not remove the container")
