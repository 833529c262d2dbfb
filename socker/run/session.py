"""The caller's side of a running container: stdio, terminal and signals, in one thread.

A poll loop moves bytes between the caller's stdio and the engine's attach
stream, turns the caller's signals into the engine's kill requests and a
resized terminal into a resize request, and ends with the container's exit
status. It holds no privilege: every engine call goes through `Engine`.
"""

import errno
import os
import select
import signal
import socket
import termios
import tty

from ..errors import EngineError

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2)
_CHUNK = 65536
_STDOUT, _STDERR = 1, 2


class Signals:
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
        hold_signals()  # before the handlers that would raise KeyboardInterrupt come back
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(self._previous_wakeup)
        os.close(self.wakeup_fd)
        os.close(self._write_fd)


class Session:
    """One container's stdio session; run() returns its exit status."""

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
        size = terminal_size()
        if size is None:
            return
        try:
            self.engine.resize(self.container_id, *size)
        except EngineError:
            pass  # it has already stopped

    def _wait(self):
        while True:
            status = self.engine.wait(self.container_id, timeout=1)
            self._forward(self.signals.take())
            if status is not None:
                return status


def hold_signals():
    """Keep the caller's signals (^C, the scheduler's SIGTERM) pending, until `release_signals` is
    given the mask this returns, or until socker exits: what socker does then (making the run's
    state and its guardian; removing the container and ending the run's audit trail) a
    KeyboardInterrupt in the middle would leave half done. SIGKILL still ends socker, and its
    guardian then finishes."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED_SIGNALS)


def release_signals(mask):
    """Let the signals `hold_signals` held arrive (at once, those that came meanwhile)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def terminal_size():
    """(rows, columns) of the caller's terminal, or None if socker has none."""
    try:
        columns, rows = os.get_terminal_size(1 if os.isatty(1) else 0)
    except OSError:
        return None
    return rows, columns


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
