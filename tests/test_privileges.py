"""socker's own descriptor limit: as many as it may take, whatever the caller's soft limit."""

import resource

import pytest

from socker import privileges

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
