"""Privileges: the descriptors socker takes, the caller's limits it reads, and its root children's signals."""

import json
import os
import resource
import signal
from types import SimpleNamespace

import pytest

from socker.host import privileges

INF = resource.RLIM_INFINITY


@pytest.mark.parametrize("caller, may_raise_hard, taken", [
    ((16, INF), False, (1024, INF)),
    ((16, 4096), False, (1024, 4096)),
    ((2048, 4096), False, None),            # enough already
    ((INF, INF), False, None),
    ((16, 59), True, (1024, 1024)),         # root with CAP_SYS_RESOURCE: past the caller's hard limit
    ((16, 59), False, (59, 59)),            # a bounding set without it: up to the caller's hard limit
])
def test_socker_takes_the_descriptors_it_may(monkeypatch, caller, may_raise_hard, taken):
    calls = []

    def setrlimit(which, limits):
        assert which == resource.RLIMIT_NOFILE
        if limits[1] != INF and limits[1] > caller[1] and not may_raise_hard:
            raise ValueError("not allowed to raise maximum limit")
        calls.append(limits)

    monkeypatch.setattr(resource, "getrlimit", lambda which: caller)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    privileges._take_descriptors(1024)
    assert calls == ([taken] if taken else [])


@pytest.mark.parametrize("seen, setuid, which, caller", [
    ((8 << 20, INF), True, resource.RLIMIT_STACK, (INF, INF)),        # the kernel lowered it: the hard one
    ((8 << 20, 64 << 20), True, resource.RLIMIT_STACK, (64 << 20, 64 << 20)),
    ((8 << 20, 8 << 20), True, resource.RLIMIT_STACK, (8 << 20, 8 << 20)),
    ((4 << 20, INF), True, resource.RLIMIT_STACK, (4 << 20, INF)),     # below the kernel's: the caller's own
    ((8 << 20, INF), False, resource.RLIMIT_STACK, (8 << 20, INF)),    # not setuid: nothing was lowered
    ((8 << 20, INF), True, resource.RLIMIT_DATA, (8 << 20, INF)),
])
def test_the_callers_limits_as_far_as_socker_can_tell(monkeypatch, seen, setuid, which, caller):
    monkeypatch.setattr(resource, "getrlimit", lambda w: seen)
    assert privileges._callers_limit(which, setuid) == caller


# What a terminal sends to its whole foreground process group, a root child included until it has
# left the caller's session; no permission check stands in the way.
TERMINALS_SIGNALS = {signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU,
                     signal.SIGHUP, signal.SIGWINCH}
CALLER_UID = 65534


def _in_a_setuid_process(body):
    """Run `body(privileges, report)` in a process that is what an installed socker is to the kernel
    (real uid a caller's, effective uid 0); returns the values it and its children `report`ed."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_fd)
            os.setresuid(CALLER_UID, 0, 0)
            body(privileges.Privileges(SimpleNamespace(uid=CALLER_UID)),
                 lambda value: os.write(write_fd, json.dumps(value).encode() + b"\n"))
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reports:
        lines = reports.read().splitlines()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, lines
    return [json.loads(line) for line in lines]


def _blocked():
    return sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))


@pytest.mark.root
def test_a_root_child_starts_with_the_terminals_signals_blocked_and_its_parent_as_it_was():
    def body(privs, report):
        before = _blocked()
        pid = privs.fork_root_child()
        if pid == 0:
            report({"child": _blocked()})
            os._exit(0)
        os.waitpid(pid, 0)
        report({"parent": _blocked(), "before": before})

    child, parent = _in_a_setuid_process(body)
    assert TERMINALS_SIGNALS <= set(child["child"])
    assert parent["parent"] == parent["before"]


@pytest.mark.root
def test_a_stop_from_the_terminal_before_a_root_child_detaches_never_stops_it():
    def body(privs, report):
        pid = privs.fork_root_child()
        if pid == 0:
            os.kill(os.getpid(), signal.SIGTSTP)  # ^Z in the instant between fork and setsid
            privileges.detach()
            os._exit(0)
        _, status = os.waitpid(pid, os.WUNTRACED)
        if os.WIFSTOPPED(status):
            with privs.elevated():
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        report("stopped" if os.WIFSTOPPED(status) else "ran on")

    assert _in_a_setuid_process(body) == ["ran on"]


def _is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


@pytest.mark.root
def test_a_detached_root_child_keeps_no_descriptor_of_the_callers_even_above_its_limit():
    def body(privs, report):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
        os.dup2(0, 2000)  # a caller's descriptor far up...
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # ...then a limit below it
        pid = privs.fork_root_child()
        if pid == 0:
            kept = os.open("/dev/null", os.O_RDONLY)
            privileges.detach(kept)
            os._exit(0 if _is_open(kept) and not _is_open(2000) else 1)  # the report pipe is closed too
        _, status = os.waitpid(pid, 0)
        report(os.waitstatus_to_exitcode(status))

    assert _in_a_setuid_process(body) == [0]


def _may_raise_hard_limits():
    with open("/proc/self/status") as f:
        bounding = next(line for line in f if line.startswith("CapBnd:"))
    return bool(int(bounding.split()[1], 16) >> 24 & 1)  # CAP_SYS_RESOURCE


@pytest.mark.root
def test_a_detached_root_child_has_roots_limits_as_far_as_the_kernel_lets_root():
    callers_hard = 1 << 30

    def body(privs, report):
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, callers_hard))  # `ulimit -S -f 0`, say
        read_fd, write_fd = os.pipe()
        pid = privs.fork_root_child()
        if pid == 0:
            privileges.detach(write_fd)
            os.write(write_fd, json.dumps([resource.getrlimit(resource.RLIMIT_FSIZE),
                                           signal.getsignal(signal.SIGXFSZ) == signal.SIG_IGN]).encode())
            os._exit(0)
        os.close(write_fd)
        with os.fdopen(read_fd) as child:
            report(json.loads(child.read()))
        os.waitpid(pid, 0)

    [(limit, ignores_sigxfsz)] = _in_a_setuid_process(body)
    roots = privileges.roots_limits()[resource.RLIMIT_FSIZE]
    if _may_raise_hard_limits():
        assert tuple(limit) == roots
    else:  # the caller's hard limit stays, and the soft one goes up to it
        assert tuple(limit) == (callers_hard if roots[0] == resource.RLIM_INFINITY else min(roots[0], callers_hard),
                                callers_hard)
    assert ignores_sigxfsz  # a limit that stays makes a write fail, not the child die


def test_roots_limits_are_read_as_proc_shows_them(tmp_path):
    proc = tmp_path / "limits"
    proc.write_text("Limit                     Soft Limit           Hard Limit           Units     \n"
                    "Max cpu time              unlimited            unlimited            seconds   \n"
                    "Max stack size            8388608              unlimited            bytes     \n"
                    "Max open files            1024                 524288               files     \n"
                    "Max nice priority         0                    0                    \n"
                    "Max realtime timeout      unlimited            unlimited            us        \n")
    assert privileges.roots_limits(str(proc)) == {
        resource.RLIMIT_CPU: (resource.RLIM_INFINITY, resource.RLIM_INFINITY),
        resource.RLIMIT_STACK: (8388608, resource.RLIM_INFINITY),
        resource.RLIMIT_NOFILE: (1024, 524288), resource.RLIMIT_NICE: (0, 0)}
