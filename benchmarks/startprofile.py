"""Where one `socker run IMG true` spends its time: landmarks in a system-call trace.

strace runs socker as the benchmark user (`-u`, so that the setuid bit holds) and records, with
their times, the calls that mark socker's phases: its exec, the first read of /etc/passwd (the
caller's identity, after the interpreter's start), the open of socker.yaml (after the engine
client's imports), each request to the engine, each audit record, the guardian's fork, and the
exit. A phase runs from its landmark to the next and is named by the landmark that begins it, so
that an engine request's phase holds the engine's answer and what socker did with it. Nothing in
socker is there for the profile.

strace slows each call it traces, so the traced total is above an untraced run's: the table is for
proportions. Wall and CPU time (socker and the guardian it waits for, from wait4's rusage) come
from untraced runs.
"""

import os
import re
import statistics
import subprocess
import tempfile
import time

TRACED = "execve,openat,connect,sendto,clone,clone3,exit_group"
_LINE = re.compile(r"(?P<pid>\d+) (?P<time>\d+\.\d+) (?P<call>\w+)\((?P<args>.*)")
_REQUEST = re.compile(r'^\d+, "(?P<method>GET|POST|PUT|DELETE|HEAD) /v[\d.]+(?P<path>/[^ ?"]*)')
_AUDIT = re.compile(r'^\d+, "<\d+>')


def _normalise(path, image):
    path = re.sub(r"/[0-9a-f]{64}", "/{id}", path)
    return path.replace(image, "{image}") if image else path


def landmarks(trace, image=None):
    """[(seconds since the exec, phase name)] of the traced process (the first pid in `trace`)."""
    found, main, start = [], None, None
    passwd_seen = config_seen = False
    for line in trace.splitlines():
        m = _LINE.match(line)
        if not m or "resumed>" in line:
            continue
        pid, t, call, args = int(m["pid"]), float(m["time"]), m["call"], m["args"]
        if main is None:
            main, start = pid, t
        if pid != main:
            continue
        name = None
        if call == "execve":
            name = "interpreter start, socker's first modules, identity"
        elif call == "openat" and '"/etc/passwd"' in args and not passwd_seen:
            passwd_seen, name = True, "imports of the engine client (docker, requests, urllib3, yaml)"
        elif call == "openat" and '"socker.yaml"' in args and not config_seen:
            config_seen, name = True, "configuration, job, GPUs, policy, host paths"
        elif call == "sendto" and (r := _REQUEST.match(args)):
            name = f"engine: {r['method']} {_normalise(r['path'], image)}"
        elif call == "sendto" and _AUDIT.match(args):
            name = "audit record"
        elif call in ("clone", "clone3"):
            name = "thread start" if "CLONE_THREAD" in args else "guardian fork, user database, staged mounts"
        elif call == "exit_group":
            name = "exit"
        if name:
            found.append((t - start, name))
    return found


def phases(marks):
    """[(name, seconds)] from one run's landmarks: each lasts until the next begins."""
    return [(name, nxt - t) for (t, name), (nxt, _) in zip(marks, marks[1:])]


def traced_run(argv, env, cwd, user, image):
    """The phases of one traced run of `argv` (socker's, without the setpriv prefix)."""
    with tempfile.NamedTemporaryFile("r", prefix="socker-profile-", suffix=".strace") as out:
        result = subprocess.run(["strace", "-f", "-ttt", "-qq", "-s", "120", "-o", out.name, "-e",
                                 f"trace={TRACED}", "-u", user, *argv], env=env, cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if result.returncode != 0:
            raise RuntimeError(f"traced run failed ({result.returncode}): {result.stderr.decode().strip()}")
        trace = out.read()
    marks = landmarks(trace, image)
    if not any(name.startswith("engine: ") for _, name in marks):
        first = "\n".join(trace.splitlines()[:3])
        raise RuntimeError(f"the trace of socker holds no engine request ({len(trace)} bytes, starting: {first!r})")
    return phases(marks)


def untraced_run(argv, env, cwd):
    """(wall seconds, CPU seconds of the process and the children it waited for, exit status)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode


def median_phases(runs):
    """[(name, median seconds)] over runs whose phases came in the first run's order; and how many did."""
    order = [name for name, _ in runs[0]]
    alike = [run for run in runs if [name for name, _ in run] == order]
    return [(name, statistics.median(run[i][1] for run in alike)) for i, name in enumerate(order)], len(alike)
