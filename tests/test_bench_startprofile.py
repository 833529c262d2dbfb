"""benchmarks/startprofile.py: the phases of a start, read from strace's record of one run."""

import pytest

from benchmarks import startprofile

IMAGE = "socker-test/busybox:latest"
ID = "c50a04b265dbf92c2d3cdca1f9f2b3563a6d0eec8f7af572bd641dc0261b46fe"
# strace -f -ttt -qq -s 120 of `socker run IMAGE true` (cut): the guardian is pid 101.
TRACE = f"""\
100 1000.000 execve("/usr/local/bin/socker", ["/usr/local/bin/socker", "run"], 0x7ffd /* 3 vars */) = 0
100 1000.020 openat(AT_FDCWD, "/etc/nsswitch.conf", O_RDONLY|O_CLOEXEC) = 3
100 1000.030 openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3
100 1000.035 openat(AT_FDCWD, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3
100 1000.090 openat(3, "socker.yaml", O_RDONLY|O_NONBLOCK|O_NOFOLLOW|O_CLOEXEC) = 4
100 1000.095 sendto(3, "GET /v1.41/images/docker.io/{IMAGE}/json HTTP/1.1\\r\\nHost: localhost\\r\\n"..., 195, 0, NULL, 0) = 195
100 1000.100 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 101
101 1000.101 sendto(4, "GET /v1.41/containers/json HTTP/1.1\\r\\n"..., 100, 0, NULL, 0) = 100
100 1000.110 sendto(4, "POST /v1.41/containers/create?name=socker-1001-100423b78c80 HTTP/1.1\\r\\n"..., 249, 0, NULL, 0 <unfinished ...>
101 1000.111 exit_group(0) = ?
100 1000.112 <... sendto resumed>) = 249
100 1000.113 sendto(4, "{{\\"User\\": \\"1001:1002\\"}}"..., 2353, 0, NULL, 0) = 2353
100 1000.130 sendto(6, "<86>Dec  4 03:57:46 socker[100]: action=run result=created"..., 252, MSG_NOSIGNAL, NULL, 0) = 252
100 1000.131 sendto(9, "POST /v1.41/containers/{ID}/attach?stream=1 HTTP/1.1\\r\\n"..., 210, 0, NULL, 0) = 210
100 1000.140 sendto(11, "DELETE /v1.41/containers/{ID}?v=True HTTP/1.1\\r\\n"..., 273, 0, NULL, 0) = 273
100 1000.150 exit_group(0) = ?
"""


def test_the_phases_of_a_start_are_named_by_the_landmark_that_begins_them():
    phases = startprofile.phases(startprofile.landmarks(TRACE, IMAGE))
    assert [name for name, _ in phases] == [
        "interpreter start, socker's first modules, identity",
        "imports of the engine client (docker, requests, urllib3, yaml)",
        "configuration, job, GPUs, policy, host paths",
        "engine: GET /images/docker.io/{image}/json",
        "guardian fork, user database, staged mounts",
        "engine: POST /containers/create",
        "audit record",
        "engine: POST /containers/{id}/attach",
        "engine: DELETE /containers/{id}",
    ]
    assert [round(seconds * 1000) for _, seconds in phases] == [30, 60, 5, 5, 10, 20, 1, 9, 10]


def test_the_median_is_over_runs_whose_phases_came_in_the_same_order():
    first = [("a", 1.0), ("b", 2.0)]
    runs = [first, [("a", 3.0), ("b", 4.0)], [("a", 5.0), ("b", 6.0)], [("b", 100.0)]]
    assert startprofile.median_phases(runs) == ([("a", 3.0), ("b", 4.0)], 3)


def test_a_trace_of_nothing_has_no_phases():
    assert startprofile.phases(startprofile.landmarks("", IMAGE)) == []

