"""Run one authorised container: create, attach, start, stream, wait, remove.

Everything happens in one thread: a poll loop moves bytes between the
caller's stdio and the engine's attach stream and forwards signals. A
guardian process, forked before the container exists and owned by root so
that the caller cannot kill it, removes the container if socker dies
without doing so itself (SIGKILL, OOM killer, a crash).
"""

import dataclasses
import errno
import os
import re
import secrets
import select
import signal
import socket
import termios
import time
import tty

from . import audit, cgroups, hostpaths, userdb
from .engine import Engine
from .errors import EngineError
from .policy import Mount

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
_CHUNK = 65536
CHDIR_HELPER = "socker-chdir"  # packaging/socker-chdir.c
_STDOUT, _STDERR = 1, 2
# The engine may still be creating the container when socker dies: the guardian keeps
# looking for it by name this long before it concludes there is nothing to remove.
_GUARDIAN_PATIENCE = 10.0


def container_name(uid, job):
    """socker-UID-HEX, or socker-UID-jJOB-HEX in a job, so that the epilog finds the job's state."""
    job_part = f"j{re.sub(r'[^A-Za-z0-9_.-]', '_', job.job_id)}-" if job else ""
    return f"socker-{uid}-{job_part}{secrets.token_hex(6)}"


def run(spec, descriptors, image, name, engine, identity, privileges, config, audit_fields, placement):
    """Run the container; returns (exit status, whether it was OOM-killed). Leaves nothing behind.

    `descriptors` hold the sources of spec.mounts, opened by hostpaths.pin.
    """
    guardian = Guardian(name, config, audit_fields, privileges, placement)
    container_id = None
    try:
        extra_mounts = userdb.write(identity, name, privileges)
        with privileges.elevated():
            mounts = hostpaths.stage(spec.mounts, descriptors, userdb.state_directory(name))
        spec = dataclasses.replace(spec, mounts=mounts)
        helper = chdir_helper()
        container_id = engine.create(spec, image, name, (*extra_mounts, helper), placement.parent, helper.target)
        guardian.tell(container_id)
        audit_fields["container"] = container_id[:12]
        with _Signals() as signals:
            status = _Session(engine, container_id, spec, signals).run()
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
                        _tidy(name, placement)
            finally:
                guardian.release(cleaned_up=removed)


def chdir_helper():
    """The mount that puts socker-chdir, from beside the socker binary, in the container (read-only)."""
    beside = os.path.join(os.path.dirname(os.path.realpath("/proc/self/exe")), CHDIR_HELPER)
    return Mount(beside, f"/.{CHDIR_HELPER}", True)


def _tidy(name, placement):
    """Remove what socker created on the host for container `name`; needs root."""
    hostpaths.unstage(userdb.state_directory(name))
    userdb.remove(name)
    cgroups.remove_if_empty(placement.created)


class _Signals:
    """Collects signals while a container runs; wakes the poll loop through a pipe."""

    def __init__(self):
        self.pending = []
        self._previous = {}
        self.wakeup_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def __enter__(self):
        self._previous_wakeup = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for sig in (*FORWARDED_SIGNALS, signal.SIGWINCH):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.pending.append(signum)

    def take(self):
        try:
            os.read(self.wakeup_fd, 512)
        except BlockingIOError:
            pass
        taken, self.pending = self.pending, []
        return taken

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self.wakeup_fd)
        os.close(self._write_fd)


class _Session:
    def __init__(self, engine, container_id, spec, signals):
        self.engine, self.container_id, self.spec, self.signals = engine, container_id, spec, signals
        self.closed_outputs = set()

    def run(self):
        sock, early = self.engine.attach(self.container_id, stdin=self.spec.interactive)
        saved_tty = None
        try:
            if self.spec.tty and self.spec.interactive and os.isatty(0):
                saved_tty = termios.tcgetattr(0)
                tty.setraw(0)
            self.engine.start(self.container_id)
            if self.spec.tty:
                self._resize()
            self._pump(sock, early)
        finally:
            sock.close()
            if saved_tty is not None:
                termios.tcsetattr(0, termios.TCSADRAIN, saved_tty)
        return self._wait()

    def _pump(self, sock, received):
        """Move bytes until the container closes its output."""
        sock.setblocking(False)
        poller = select.poll()
        poller.register(self.signals.wakeup_fd, select.POLLIN)
        stdin = _Stdin(poller) if self.spec.interactive else None
        frames = bytearray(received)
        self._deliver(frames)
        while True:
            poller.register(sock, select.POLLIN | (select.POLLOUT if stdin and stdin.wants_to_send else 0))
            for fd, events in _poll(poller):
                if fd == self.signals.wakeup_fd:
                    self._forward(self.signals.take())
                elif fd == 0:
                    stdin.read()
                elif events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    data = _recv(sock)
                    if data == b"":
                        return
                    frames += data or b""
                    self._deliver(frames)
                if fd == sock.fileno() and events & select.POLLOUT:
                    stdin.send(sock)

    def _deliver(self, buffer):
        """Write complete frames in `buffer` to stdout/stderr and drop them from it."""
        if self.spec.tty:  # a terminal is one raw stream
            self._write(_STDOUT, bytes(buffer))
            del buffer[:]
            return
        while len(buffer) >= 8:
            size = int.from_bytes(buffer[4:8], "big")
            if len(buffer) < 8 + size:
                return
            self._write(_STDERR if buffer[0] == 2 else _STDOUT, bytes(buffer[8:8 + size]))
            del buffer[:8 + size]

    def _write(self, fd, data):
        if fd in self.closed_outputs:
            return
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(fd, view):]
            except BlockingIOError:
                select.select([], [fd], [])
            except OSError as e:
                if e.errno != errno.EPIPE:
                    raise
                # The reader went away, as in `socker run IMG yes | head`: end the container
                # the way a pipeline ends its writer.
                self.closed_outputs.add(fd)
                self._kill("SIGPIPE")
                return

    def _forward(self, signums):
        for signum in signums:
            if signum == signal.SIGWINCH:
                if self.spec.tty:
                    self._resize()
            else:
                self._kill(signal.Signals(signum).name)

    def _kill(self, signal_name):
        try:
            self.engine.kill(self.container_id, signal_name)
        except EngineError:
            pass  # it has already stopped

    def _resize(self):
        try:
            width, height = os.get_terminal_size(1 if os.isatty(1) else 0)
        except OSError:
            return
        try:
            self.engine.resize(self.container_id, height, width)
        except EngineError:
            pass  # it has already stopped

    def _wait(self):
        while True:
            status = self.engine.wait(self.container_id, timeout=1)
            self._forward(self.signals.take())
            if status is not None:
                return status


def _poll(poller):
    while True:
        try:
            return poller.poll()
        except InterruptedError:
            continue


class _Stdin:
    """The caller's stdin on its way to the container, with back-pressure and end-of-file.

    States: reading; paused (too much not yet sent); eof (read all, sending the rest);
    closed (our side of the stream shut, so the container's stdin ends).
    """

    def __init__(self, poller):
        self._poller = poller
        self.pending = b""
        self._state = "reading"
        poller.register(0, select.POLLIN)

    @property
    def wants_to_send(self):
        return bool(self.pending) or self._state == "eof"

    def read(self):
        try:
            data = os.read(0, _CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        self.pending += data
        if not data:
            self._poller.unregister(0)
            self._state = "eof"
        elif len(self.pending) >= 4 * _CHUNK:
            self._poller.unregister(0)
            self._state = "paused"

    def send(self, sock):
        self.pending = self.pending[_send(sock, self.pending):] if self.pending else b""
        if self._state == "paused" and len(self.pending) < _CHUNK:
            self._poller.register(0, select.POLLIN)
            self._state = "reading"
        elif self._state == "eof" and not self.pending:
            sock.shutdown(socket.SHUT_WR)
            self._state = "closed"


def _recv(sock):
    try:
        return sock.recv(_CHUNK)
    except BlockingIOError:
        return None
    except OSError:
        return b""


def _send(sock, data):
    try:
        return sock.send(data[:_CHUNK])
    except BlockingIOError:
        return 0


class Guardian:
    """A root-owned child that removes the container if socker ends without saying it did.

    It is forked before any thread or engine connection of its own exists and
    learns the container's ID through a pipe; end-of-file on that pipe without
    the final "done" means socker is gone.
    """

    def __init__(self, name, config, audit_fields, privileges, placement):
        read_fd, self._write_fd = os.pipe2(os.O_CLOEXEC)
        self.pid = privileges.fork_root_child()
        if self.pid == 0:
            os.close(self._write_fd)
            try:
                _guard(read_fd, name, config, dict(audit_fields), privileges, placement)
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


def _guard(read_fd, name, config, audit_fields, privileges, placement):
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
    engine = Engine(config.socket, privileges)
    deadline = time.monotonic() + _GUARDIAN_PATIENCE
    gone = False
    while not gone and time.monotonic() < deadline:
        try:
            # Not found by name alone may mean not created yet: look again until the deadline.
            gone = engine.remove(container_id or name) or container_id is not None
        except EngineError:
            pass
        if not gone:
            time.sleep(0.2)
    result = {"result": "killed"}
    if gone or container_id is None:
        _tidy(name, placement)
    else:  # its state stays, for the epilog or the administrator
        result = {"result": "failed", "reason": "the engine did not remove the container"}
    audit.record(config.audit_facility, {**audit_fields, "container": (container_id or name)[:12],
                                         **result, "status": None})
