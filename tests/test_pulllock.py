"""The node's lock on a pull: held by one, waited for by the others, gone when no pull is under way."""

import os
import queue
import signal
import threading
import time

import pytest

from socker import imageref
from socker.registry import pulllock
from socker.errors import PullStalled
from socker.registry.pulllock import Outcome

pytestmark = pytest.mark.root  # the lock directory must be root's

REFERENCE = imageref.parse("registry.example.org:5443/bio/bowtie:2.5")


@pytest.fixture(autouse=True)
def locks(tmp_path, monkeypatch):
    os.chmod(tmp_path, 0o755)
    directory = tmp_path / "run" / "pulls"
    monkeypatch.setattr(pulllock, "LOCK_DIRECTORY", str(directory))
    return directory


def never(*_):
    raise AssertionError("waited, though no one held the lock")


def acquire(since=0, patience=60, on_wait=never):
    return pulllock.acquire(REFERENCE, since, patience, on_wait)


def test_the_first_holds_it_and_leaves_nothing_when_it_lets_go(locks):
    with acquire() as lock:
        assert isinstance(lock, pulllock.PullLock) and len(os.listdir(locks)) == 1
    assert os.listdir(locks) == []


@pytest.mark.parametrize("outcome", [Outcome(digest="sha256:" + "ef" * 32), Outcome(failure="cannot pull: no")])
def test_those_that_waited_get_the_outcome_of_the_holders_pull(outcome):
    since = time.monotonic_ns()
    lock, waited, got = acquire(), threading.Event(), []
    waiter = threading.Thread(target=lambda: got.append(acquire(since, on_wait=waited.set)))
    waiter.start()
    assert waited.wait(30)
    lock.settle(outcome)
    lock.release()
    waiter.join(30)
    assert got == [outcome]


def test_an_outcome_from_before_a_waiter_began_is_not_its_own(locks):
    lock, waited, got = acquire(), threading.Event(), []
    lock.settle(Outcome(failure="an earlier attempt's"))
    waiter = threading.Thread(target=lambda: got.append(acquire(time.monotonic_ns(), on_wait=waited.set)))
    waiter.start()
    assert waited.wait(30)
    lock.release()
    waiter.join(30)
    [taken] = got
    assert isinstance(taken, pulllock.PullLock)  # it pulls itself
    taken.release()
    assert os.listdir(locks) == []


def test_a_lock_whose_holder_died_without_a_word_is_taken_over(locks):
    pid = os.fork()
    if pid == 0:
        acquire()
        os._exit(0)  # the kernel lets go; the file stays, with no outcome in it
    os.waitpid(pid, 0)
    assert len(os.listdir(locks)) == 1
    with acquire() as lock:
        assert isinstance(lock, pulllock.PullLock)
    assert os.listdir(locks) == []


def test_a_waiter_gives_up_on_a_holder_that_makes_no_progress():
    with acquire():
        with pytest.raises(PullStalled, match="made no progress for 0.5 s"):
            acquire(time.monotonic_ns(), patience=0.5, on_wait=lambda: None)


def test_a_holder_that_makes_progress_is_waited_for_beyond_the_patience():
    since = time.monotonic_ns()
    lock, got, stop = acquire(), [], threading.Event()

    def progress():
        while not stop.wait(0.1):
            lock.touch()
    toucher = threading.Thread(target=progress)
    toucher.start()
    waiter = threading.Thread(target=lambda: got.append(acquire(since, patience=1.5, on_wait=lambda: None)))
    waiter.start()
    waiter.join(3 * 1.5)  # twice its patience: it still waits
    stop.set()
    toucher.join()
    assert waiter.is_alive() and got == []
    lock.settle(Outcome(digest="sha256:" + "ab" * 32))
    lock.release()
    waiter.join(30)
    assert got == [Outcome(digest="sha256:" + "ab" * 32)]


def test_sweep_removes_the_files_no_one_holds_and_keeps_the_held_ones(locks):
    pid = os.fork()
    if pid == 0:
        pulllock.acquire(imageref.parse("registry.example.org:5443/bio/other:1"), 0, 60, never)
        os._exit(0)
    os.waitpid(pid, 0)
    with acquire():
        assert pulllock.sweep() == 1
        assert len(os.listdir(locks)) == 1
    assert pulllock.sweep() == 0 and os.listdir(locks) == []


def test_when_the_holder_dies_without_a_word_one_waiter_takes_over_and_the_others_get_its_outcome(locks):
    since = time.monotonic_ns()
    read_fd, write_fd = os.pipe()
    holder = os.fork()
    if holder == 0:
        os.close(read_fd)
        acquire()
        os.close(write_fd)  # says that it holds the lock
        time.sleep(120)
        os._exit(0)
    os.close(write_fd)
    assert os.read(read_fd, 1) == b""
    os.close(read_fd)
    waited, results = threading.Semaphore(0), queue.Queue()
    waiters = [threading.Thread(target=lambda: results.put(acquire(since, on_wait=waited.release))) for _ in range(4)]
    for waiter in waiters:
        waiter.start()
    for _ in waiters:
        assert waited.acquire(timeout=30)
    os.kill(holder, signal.SIGKILL)
    os.waitpid(holder, 0)
    took_over = results.get(timeout=30)  # the others wait for it
    assert isinstance(took_over, pulllock.PullLock)
    outcome = Outcome(digest="sha256:" + "cd" * 32)
    took_over.settle(outcome)
    took_over.release()
    assert [results.get(timeout=30) for _ in range(3)] == [outcome] * 3
    assert os.listdir(locks) == []
