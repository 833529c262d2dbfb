"""Properties of the parser and the policy together, over generated command lines.

Whatever argv a caller writes, a container socker agrees to run is the caller's
own uid and gids, an allow-listed image, and mounts only from their home, an
allowed prefix or the site's mounts, never over a protected path.
"""

import collections
import posixpath

from hypothesis import given, settings, strategies as st

from helpers import ALLOWED_IMAGES, CALLER_ENV, IDENTITY, JOB, SITE_MOUNT, fake_realpath, host_for, make_config
from socker import cli, environ, model, policy
from socker.errors import HostPathError, PolicyError, UsageError

CONFIG = make_config(site_mounts=(SITE_MOUNT,))
PERMITTED_ROOTS = ("/home/alice", "/scratch")  # real paths on the fake host
SITE = model.Mount(SITE_MOUNT.source, SITE_MOUNT.target, SITE_MOUNT.read_only)
PROTECTED = ("/proc", "/sys", "/dev", "/etc")

PATHS = ["/home/alice/data", "/scratch/alice", "/data", "/home/alice", "/software", "/home/alice/in.txt", "/scratch",
         "/home/alice/link-scratch", "/scratch/alice/link-up", "/home/alice/link-etc/..", "/var/run/docker.sock",
         "/", "/etc", "/etc/passwd", "/proc", "/proc/self/fd/3", "/sys", "/dev", "/dev/shm", "/home",
         "/home/alice/fifo", "/home/alice/link-etc", "/home/bob", "/scratch/alice/link-root",
         "/scratch/alice/link-bob", "/scratch/alice/link-scratch2", "/scratch2/alice", "/scratchy",
         "/scratch/../etc", "/home/alice/../bob", "/a/../etc", "//etc", "/a//b", "/cluster/software", "/root",
         "/tmp"]
DANGEROUS = ["--privileged", "--user=0", "-u", "0", "--cap-add=ALL", "--device=/dev/sda", "--net=host",
             "--cgroup-parent=/", "--entrypoint=sh", "--security-opt=seccomp=unconfined", "-p", "80:80", "--rm",
             "--pid=host", "--", "-", "-it", "-ti", "-i", "-t", "-h", "-v", "-e", "-w", "--volume", "--env",
             "--workdir", "--volume=/:/host", "-v/:/host", "-w/proc", "--workdir=/etc", "run", "images"]
IMAGES = ["busybox:1.36", "socker-test/busybox:latest", "docker.io/library/busybox:1.36", "busybox",
          "socker-test/busybox:latest2", "-busybox", "busybox:1.36 "]
ENV = ["HOME=/root", "USER=root", "LD_PRELOAD=/x.so", "PATH", "TERM", "OMP_NUM_THREADS", "A=b=c", "1A=x", "NOPE"]

good_path = st.sampled_from(PATHS)
path = st.one_of(good_path, st.text("/.aehlcs", min_size=1, max_size=12))
volume = st.one_of(
    st.builds(lambda s, t, mode: f"{s}:{t}{mode}", good_path, good_path, st.sampled_from(["", ":ro", ":rw"])),
    st.builds(lambda s, t, mode: f"{s}:{t}{mode}", path, path, st.sampled_from(["", ":ro", ":z", ":"])))
token = st.one_of(st.sampled_from(DANGEROUS + IMAGES + ENV), path, volume,
                  st.text("-:/=.abehilortuvw", max_size=10))
option = st.sampled_from([
    st.tuples(st.sampled_from(["-v", "--volume"]), volume),
    st.builds(lambda v: (f"-v{v}",), volume),
    st.tuples(st.sampled_from(["-e", "--env"]), st.sampled_from(ENV)),
    st.tuples(st.sampled_from(["-w", "--workdir"]), path),
    st.tuples(st.sampled_from(["-i", "-t", "-it", "-ti"])),
] * 2 + [st.tuples(st.sampled_from(DANGEROUS))]).flatmap(lambda strategy: strategy)  # weighted, as argv below
structured = st.builds(lambda opts, image, command: ["run", *(t for o in opts for t in o), image, *command],
                       st.lists(option, max_size=4), st.sampled_from([*ALLOWED_IMAGES, *ALLOWED_IMAGES, *IMAGES]),
                       st.lists(token, max_size=3))
raw = [st.lists(token, max_size=8).map(lambda t: ["run", *t]), st.lists(token, max_size=6)]
# Command lines made of pieces the policy accepts, so that the property meets many accepted
# requests and not only refusals: two mounts on one destination are still refused.
ACCEPTABLE_SOURCES = ["/home/alice/data", "/scratch/alice", "/home/alice/in.txt", "/home/alice/link-scratch"]
ACCEPTABLE_TARGETS = ["/data", "/input", "/work/a", "/opt/x", "/scratch/alice"]
acceptable_volume = st.builds(lambda s, t, mode: f"{s}:{t}{mode}", st.sampled_from(ACCEPTABLE_SOURCES),
                              st.sampled_from(ACCEPTABLE_TARGETS), st.sampled_from(["", ":ro", ":rw"]))
acceptable_option = st.sampled_from([
    st.tuples(st.sampled_from(["-v", "--volume"]), acceptable_volume),
    st.tuples(st.sampled_from(["-e", "--env"]), st.sampled_from(ENV)),
    st.tuples(st.sampled_from(["-w", "--workdir"]), st.sampled_from([*ACCEPTABLE_TARGETS, "/tmp"])),
    st.tuples(st.sampled_from(["-i", "-t", "-it", "-ti"])),
]).flatmap(lambda strategy: strategy)
acceptable = st.builds(lambda opts, image, command: ["run", *(t for o in opts for t in o), image, *command],
                       st.lists(acceptable_option, max_size=4), st.sampled_from(ALLOWED_IMAGES),
                       st.lists(token, max_size=3))
argv = st.sampled_from([acceptable] * 3 + [structured] * 4 + raw).flatmap(lambda strategy: strategy)  # weighted
cwd = st.sampled_from(["/home/alice", "/home/alice/proj", "/scratch/alice", "/cluster/software/bin", None,
                       "/scratch2/alice", "/tmp", "/", "/etc"])
# Of the generated command lines, at least this share is accepted: were none, the property
# below would hold of nothing (about 30% are).
MIN_ACCEPTED = 0.2


def is_within(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def assert_safe_container_path(path):
    assert path.startswith("/") and not path.startswith("//") and posixpath.normpath(path) == path, path
    assert path != "/" and not any(is_within(path, p) for p in PROTECTED), path


def authorize(argv, cwd, job):
    """(request, spec) for a command line: spec None if refused, request None if not `socker run`."""
    try:
        request = cli.parse(argv).action
    except UsageError:
        return None, None
    if not isinstance(request, cli.RunRequest):
        return None, None
    try:
        return request, policy.authorize(request, CONFIG, IDENTITY, host_for(request, CONFIG, IDENTITY, cwd),
                                         caller_env=CALLER_ENV, job=job)
    except (UsageError, PolicyError, HostPathError):
        return request, None


def test_an_accepted_request_is_confined():
    outcomes = collections.Counter()

    @settings(max_examples=1000)
    @given(argv, cwd, st.sampled_from([None, JOB]))
    def accepted_requests_are_confined(argv, cwd, job):
        request, spec = authorize(argv, cwd, job)
        outcomes["accepted" if spec else "refused"] += 1
        if spec:
            assert_confined(request, spec, job)

    accepted_requests_are_confined()
    assert outcomes["accepted"] >= MIN_ACCEPTED * sum(outcomes.values()), outcomes


def assert_confined(request, spec, job):
    assert (spec.uid, spec.gid, spec.groups) == (IDENTITY.uid, IDENTITY.gid, IDENTITY.groups)
    assert spec.image in CONFIG.images
    assert spec.command == request.command
    assert spec.network == CONFIG.network
    assert spec.labels["socker.uid"] == str(IDENTITY.uid)
    assert (spec.limits is None) == (job is not None)
    for mount in spec.mounts:
        assert fake_realpath(mount.source) in ((mount.source, "dir"), (mount.source, "file")), mount
        assert mount == SITE or any(is_within(mount.source, root) for root in PERMITTED_ROOTS), mount
        if mount != SITE and mount.target != IDENTITY.home:
            assert_safe_container_path(mount.target)
    targets = [m.target for m in spec.mounts]
    assert len(targets) == len(set(targets))
    assert_safe_container_path(spec.workdir)
    names = [entry.partition("=")[0] for entry in spec.env]
    assert len(names) == len(set(names)) and {"HOME", "USER", "LOGNAME"} <= set(names)


@given(st.lists(st.text(max_size=12), max_size=8))
def test_the_parser_fails_only_with_usage_errors(argv):
    try:
        invocation = cli.parse(argv)
    except UsageError as e:
        assert str(e)
        return
    action = invocation.action
    if isinstance(action, cli.RunRequest):
        assert all(v.source.startswith("/") and v.target.startswith("/") for v in action.volumes)
        assert all(environ.ENV_NAME.match(name) for name, _ in action.env)
        assert tuple(argv[len(argv) - len(action.command):]) == action.command
