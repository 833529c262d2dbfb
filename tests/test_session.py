"""The streaming loop against a fake engine: demultiplexing, stdin, signals, exit status."""

import os
import signal
import socket
import threading
from types import SimpleNamespace

import pytest

from socker.run import session


class FakeEngine:
    """Plays the engine's side of the attach stream from a script of (stream, bytes) frames."""

    def __init__(self, frames, status=0, echo_stdin=False, chunk=3):
        self.ours, self.theirs = socket.socketpair()
        self.frames, self.status, self.echo_stdin, self.chunk = frames, status, echo_stdin, chunk
        self.calls = []
        self.received = b""

    def attach(self, container_id, stdin):
        return self.ours, b""

    def start(self, container_id):
        self.calls.append("start")
        threading.Thread(target=self._play, daemon=True).start()

    def _play(self):
        stream = b"".join(bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data for kind, data in self.frames)
        for i in range(0, len(stream), self.chunk):  # frames split at every possible place
            self.theirs.sendall(stream[i:i + self.chunk])
        if self.echo_stdin:
            while data := self.theirs.recv(65536):
                self.received += data
            self.theirs.sendall(b"\x01\0\0\0" + len(self.received).to_bytes(4, "big") + self.received)
        self.theirs.close()

    def kill(self, container_id, signal_name):
        self.calls.append(signal_name)

    def resize(self, container_id, height, width):
        self.calls.append("resize")

    def wait(self, container_id, timeout):
        return self.status


@pytest.fixture(autouse=True)
def _signals(signals_restored):
    """Each session ends holding the caller's signals: each test starts with them as they were."""


def spec(interactive=False, tty=False):
    return SimpleNamespace(interactive=interactive, tty=tty)


def run_session(engine, spec_):
    with session.Signals() as signals:
        return session.Session(engine, "c0ffee", spec_, signals).run()


def test_frames_reach_stdout_and_stderr_byte_exact(capfdbinary):
    payload = bytes(range(256)) * 40
    engine = FakeEngine([(1, b"out1\n"), (2, b"err1\n"), (1, payload), (2, b""), (2, b"err2")], status=42)
    assert run_session(engine, spec()) == 42
    captured = capfdbinary.readouterr()
    assert captured.out == b"out1\n" + payload
    assert captured.err == b"err1\nerr2"
    assert engine.calls == ["start"]


def test_stdin_is_sent_and_closed(capfdbinary):
    read_end, write_end = os.pipe()
    saved = os.dup(0)
    os.dup2(read_end, 0)
    try:
        data = os.urandom(300000)
        writer = threading.Thread(target=lambda: (os.write(write_end, data), os.close(write_end)))
        writer.start()
        engine = FakeEngine([], echo_stdin=True, chunk=65536)
        assert run_session(engine, spec(interactive=True)) == 0
        writer.join()
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read_end)
    assert engine.received == data
    assert capfdbinary.readouterr().out == data


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP])
def test_signals_are_forwarded_by_name(sig, capfdbinary):
    engine = FakeEngine([(1, b"x")], status=7)
    original_start = engine.start

    def start_then_signal(container_id):
        os.kill(os.getpid(), sig)
        original_start(container_id)

    engine.start = start_then_signal
    assert run_session(engine, spec()) == 7
    assert signal.Signals(sig).name in engine.calls
