"""A run's life from `socker run` to the container's removal, against a fake engine: the audit trail's
one result per way out, the whole container name in every record, the guardian's word where socker
is gone, and what is cleaned."""

import json
import os
import re
import signal
import socket
import time

import pytest

from fake_engine_api import FakePrivileges
from helpers import CONFIG, IDENTITY, make_host
from socker import audit, cli, commands, config
from socker.errors import ConfigError, EngineError, HostPathError, JobError, PolicyError, SockerError, UsageError
from socker.host import hostpaths
from socker.run import guardian, lifecycle, runner

IMAGE_ID = "sha256:" + "1" * 64
CONTAINER_ID = "c0ffee" * 10 + "abcd"


@pytest.fixture
def audited(tmp_path, monkeypatch):
    """The records written, as {field: value}, read back from a file: the guardian writes from its own process."""
    log = tmp_path / "audit.log"

    def record(facility, fields):
        line = json.dumps({key: value for key, value in fields.items() if value is not None}) + "\n"
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    monkeypatch.setattr(audit, "record", record)

    def read():
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return read


# ---------------------------------------------------------------- the trail alone

def trail():
    return lifecycle.Trail(user="alice", uid=1000, image="busybox", command=["true"])


@pytest.mark.parametrize("raised, result, kind", [
    (PolicyError("image x is not allowed"), "refused", None),
    (UsageError("bad"), "refused", None),
    (HostPathError("/nowhere: missing"), "refused", None),
    (ConfigError("/etc/socker/socker.yaml: bad"), "failed", "pull"),
    (JobError("cannot read the job"), "failed", "pull"),
    (EngineError("cannot talk to the Docker engine"), "failed", "pull"),
    (SockerError("the registry is not verified"), "failed", "pull"),
    (OSError(28, "No space left on device"), "failed", "pull"),
    (KeyboardInterrupt(), "interrupted", "pull"),
    (RuntimeError("a bug"), "failed", "pull"),
])
def test_what_is_raised_ends_the_trail_with_the_result_it_means(audited, raised, result, kind):
    run = trail()
    run.reached("pull")
    with pytest.raises(type(raised)):
        with run.ends_if_raised():
            raise raised
    [record] = audited()
    assert (record["result"], record.get("kind")) == (result, kind)
    assert ("reason" in record) == (result != "interrupted")


def test_a_trail_ends_once_whatever_follows(audited):
    run = trail()
    with pytest.raises(EngineError):
        with run.ends_if_raised():
            run.reached("create", container="socker-1000-0123456789ab")
            run.failed("the engine refused the create")
            raise EngineError("late")
    run.exited(0)
    assert [(r["result"], r["kind"]) for r in audited()] == [("failed", "create")]


def test_stages_only_go_forward():
    run = trail()
    run.reached("create")
    with pytest.raises(AssertionError):
        run.reached("pull")


# ---------------------------------------------------------------- the remove rule, for socker and its guardian

class RemovingEngine:
    """Says whether there was anything to remove, as Engine.remove does."""

    def __init__(self, present):
        self.present, self.asked = set(present), []

    def remove(self, reference):
        self.asked.append(reference)
        found = reference in self.present
        self.present.discard(reference)
        return found


@pytest.mark.parametrize("present, container_id, gone", [
    ({"c0ffee"}, "c0ffee", True),  # removed
    (set(), "c0ffee", True),  # the ID the engine gave is not there: it was removed already
    ({"socker-1-x"}, None, True),  # no ID yet, removed by name
    (set(), None, False),  # no ID and nothing by that name: maybe not created yet
])
def test_a_container_is_gone_once_removed_or_missing_by_its_id_but_not_missing_by_name_alone(present, container_id,
                                                                                            gone):
    engine = RemovingEngine(present)
    assert lifecycle.remove_container(engine, container_id, "socker-1-x") is gone
    assert engine.asked == [container_id or "socker-1-x"]


# ---------------------------------------------------------------- `socker run`, end to end

class FakeEngine:
    """The engine's side of one run: an image, a container that prints nothing and exits `status`."""

    socket_path = "/nonexistent/docker.sock"

    def __init__(self, status=0, fail=None):
        self.status, self.fail = status, dict(fail or {})
        self.containers, self.calls = {}, []
        self.ours = self.theirs = None

    def _call(self, name, *args):
        self.calls.append((name, *args))
        if name in self.fail:
            raise self.fail[name]

    def image(self, reference):
        self._call("image", reference)
        return {"Id": IMAGE_ID, "Config": {}}

    def create(self, spec, image, name, **options):
        self._call("create", name)
        self.containers[CONTAINER_ID] = name
        return CONTAINER_ID

    def attach(self, container_id, stdin):
        self._call("attach", container_id)
        self.ours, self.theirs = socket.socketpair()
        return self.ours, b""

    def start(self, container_id):
        self._call("start", container_id)
        self.theirs.close()

    def wait(self, container_id, timeout):
        self._call("wait", container_id)
        return self.status

    def state(self, container_id):
        return {"OOMKilled": False}

    def kill(self, container_id, signal_name):
        self._call("kill", container_id, signal_name)

    def resize(self, container_id, height, width):
        pass

    def remove(self, reference):
        self._call("remove", reference)
        found = [cid for cid, name in self.containers.items() if reference in (cid, name)]
        for cid in found:
            del self.containers[cid]
        return bool(found)


class CountingPinned(hostpaths.Pinned):
    closed = 0

    def close(self):
        CountingPinned.closed += 1
        super().close()


@pytest.fixture
def node(state_dir, monkeypatch, audited, signals_restored):
    """A node for commands.run: the fake engine, the fake host of helpers, no job; socker not setuid."""
    engine = FakeEngine()
    monkeypatch.setattr(config, "load", lambda path=config.CONFIG_PATH: CONFIG)
    monkeypatch.setattr(commands, "Engine", lambda socket_path, privs: engine)
    monkeypatch.setattr(guardian, "Engine", lambda socket_path, privs: engine)
    monkeypatch.setattr(guardian, "_PATIENCE", 0.5)
    monkeypatch.setattr(commands.jobs, "current_job", lambda uid: None)
    monkeypatch.setattr(commands.hostpaths, "look", lambda paths: make_host(paths))
    CountingPinned.closed = 0
    monkeypatch.setattr(commands.hostpaths, "pin", lambda mounts: CountingPinned([]))
    monkeypatch.setattr(runner.hostpaths, "stage", lambda mounts, pinned, staging: (pinned.close(), mounts)[1])
    context = commands.Context(IDENTITY, FakePrivileges(), {"HOME": "/home/alice"}, False)
    return engine, context, audited


def ended(audited, timeout=10.0):
    """The records once the run's end is among them: the guardian writes it, after removing what the
    run left, which it may do after socker has returned (a create whose outcome socker never heard)."""
    deadline = time.monotonic() + timeout
    while not any(r["result"] != "created" for r in audited()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return audited()


def socker_run(node, *arguments):
    engine, context, _ = node
    return commands.run(cli.parse(["run", *arguments]).action, context)


def test_a_run_records_created_and_exited_naming_the_container_whole_and_by_id(node, state_dir):
    engine, _, audited = node
    engine.status = 3
    assert socker_run(node, "busybox:1.36", "true") == 3
    created, exited = audited()
    name = created["container"]
    assert name.startswith(f"socker-{IDENTITY.uid}-") and len(name) == len(f"socker-{IDENTITY.uid}-") + 12
    assert (created["result"], created["container_id"]) == ("created", CONTAINER_ID[:12])
    assert (exited["result"], exited["status"], exited["container"], exited["container_id"]) == (
        "exited", 3, name, CONTAINER_ID[:12])
    assert engine.containers == {} and ("remove", CONTAINER_ID) in engine.calls
    assert CountingPinned.closed >= 1 and not any(state_dir.iterdir())


def test_a_refusal_is_recorded_refused_and_asks_the_engine_nothing(node):
    engine, _, audited = node
    with pytest.raises(PolicyError):
        socker_run(node, "socker-test/forbidden:latest", "true")
    [refused] = audited()
    assert refused["result"] == "refused" and "kind" not in refused and "not allowed" in refused["reason"]
    assert engine.calls == []


def test_a_configuration_that_cannot_be_loaded_is_a_failure_of_kind_config(node, monkeypatch):
    def broken(path=config.CONFIG_PATH):
        raise ConfigError("/etc/socker/socker.yaml: network: not one of none, bridge, host")

    monkeypatch.setattr(config, "load", broken)
    with pytest.raises(ConfigError):
        socker_run(node, "busybox:1.36", "true")
    [failed] = node[2]()
    assert (failed["result"], failed["kind"]) == ("failed", "config") and "network" in failed["reason"]


@pytest.mark.parametrize("stage, raised, result", [
    ("image", EngineError("cannot talk to the Docker engine"), "failed"),
    ("image", KeyboardInterrupt(), "interrupted"),
    ("create", EngineError("the engine refused: CPUs", what="create"), "failed"),
    ("create", KeyboardInterrupt(), "interrupted"),
    ("attach", EngineError("hijack failed", what="attach"), "failed"),
    ("start", EngineError("no such file", what="start"), "failed"),
])
def test_what_the_engine_could_not_do_is_a_failure_of_its_stage_and_nothing_stays(node, state_dir, stage, raised,
                                                                                   result):
    engine, _, audited = node
    engine.fail[stage] = raised
    with pytest.raises(type(raised)):
        socker_run(node, "busybox:1.36", "true")
    kind = {"image": "pull", "create": "create", "attach": "run", "start": "run"}[stage]
    ends = [r for r in ended(audited) if r["result"] != "created"]
    assert [(r["result"], r["kind"]) for r in ends] == [(result, kind)]
    assert ("reason" in ends[0]) == (result == "failed")
    if kind != "pull":
        assert ends[0]["container"].startswith("socker-") and "left" not in ends[0]
    assert engine.containers == {}
    assert CountingPinned.closed >= 1 or kind == "pull"


def test_when_socker_dies_the_guardian_removes_the_container_and_records_killed_with_the_whole_name(node,
                                                                                                    state_dir):
    engine, context, audited = node
    run = trail()
    name = runner.container_name(IDENTITY.uid, None)
    run.reached("create", container=name)
    with context.privileges.elevated():
        lock_fd = commands.statedir.create(name)
    keeper = guardian.Guardian(name, commands.cgroups.Placement("", ()), run, socket_path=engine.socket_path,
                               privileges=context.privileges, lock_fd=lock_fd)
    engine.containers[CONTAINER_ID] = name  # the guardian's copy of the engine does not know it yet
    keeper.tell(CONTAINER_ID)
    os.close(keeper._write_fd)  # socker's end of the pipe, as its death closes it: no release
    os.close(lock_fd)
    _, status = os.waitpid(keeper.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [killed] = audited()
    assert (killed["result"], killed["container"], killed["container_id"]) == ("killed", name, CONTAINER_ID[:12])
    assert "removed the container" in killed["reason"] and "left" not in killed
    assert not any(state_dir.iterdir())


def guarded_run(node, created=True):
    """A trail handed to its guardian, as runner.run does, with the guardian's copy of the engine
    holding the run's container if it was `created`; returns (trail, guardian, name)."""
    engine, context, _ = node
    run = trail()
    name = runner.container_name(IDENTITY.uid, None)
    run.reached("create", container=name)
    if created:
        engine.containers[CONTAINER_ID] = name
    with context.privileges.elevated():
        lock_fd = commands.statedir.create(name)
    keeper = guardian.Guardian(name, commands.cgroups.Placement("", ()), run, socket_path=engine.socket_path,
                               privileges=context.privileges, lock_fd=lock_fd)
    os.close(lock_fd)
    run.hand_to(keeper)
    return run, keeper, name


def guardian_exit(keeper):
    _, status = os.waitpid(keeper.pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_socker_killed_after_the_container_ended_leaves_the_end_to_its_guardian(node, state_dir):
    run, keeper, name = guarded_run(node)
    keeper.tell(CONTAINER_ID)
    run.created(CONTAINER_ID)
    run.exited(3)
    os.close(keeper._write_fd)  # socker is SIGKILLed here: it never says it removed the container
    assert guardian_exit(keeper) == 0
    created, end = node[2]()
    assert (end["result"], end["status"], end["container"], end["container_id"]) == (
        "exited", 3, name, CONTAINER_ID[:12])
    assert "left" not in end and not any(state_dir.iterdir())


def test_a_guardian_whose_socker_died_before_any_container_says_none_was_created(node, state_dir):
    run, keeper, name = guarded_run(node, created=False)
    os.close(keeper._write_fd)
    assert guardian_exit(keeper) == 0
    [killed] = node[2]()
    assert killed["result"] == "killed" and "before the engine created a container" in killed["reason"]
    assert "container_id" not in killed and killed["container"] == name


def test_what_the_guardian_cannot_remove_is_named_in_the_end_record(node, state_dir, monkeypatch):
    monkeypatch.setattr(guardian, "tidy", lambda name, placement: ["/run/socker/x/mounts/0"])
    run, keeper, name = guarded_run(node)
    keeper.tell(CONTAINER_ID)
    run.exited(0)
    assert keeper.release(True) is False
    [end] = node[2]()
    assert (end["result"], end["status"], end["left"]) == ("exited", 0, "/run/socker/x/mounts/0")


@pytest.mark.parametrize("sent", ['end {"result": "exi', 'end [1, 2]'])
def test_an_end_cut_short_by_sockers_death_is_taken_for_none(node, state_dir, sent):
    run, keeper, name = guarded_run(node)
    keeper.tell(CONTAINER_ID)
    os.write(keeper._write_fd, sent.encode())
    os.close(keeper._write_fd)
    assert guardian_exit(keeper) == 0
    [killed] = node[2]()
    assert killed["result"] == "killed" and "removed the container" in killed["reason"]


def test_a_guardian_whose_tidying_fails_still_ends_the_run(node, state_dir, monkeypatch):
    def broken(name, placement):
        raise RuntimeError("a bug")

    monkeypatch.setattr(guardian, "tidy", broken)
    run, keeper, name = guarded_run(node)
    keeper.tell(CONTAINER_ID)
    run.exited(0)
    assert keeper.release(True) is False
    [end] = node[2]()
    assert (end["result"], end["status"]) == ("exited", 0) and "tidying failed" in end["left"]


def test_a_signal_after_the_container_ended_changes_neither_its_status_nor_its_record(node, state_dir,
                                                                                       monkeypatch):
    engine, _, audited = node
    engine.status = 3
    removing = engine.remove

    def remove_after_a_signal(reference):
        os.kill(os.getpid(), signal.SIGINT)  # ^C as socker removes the container
        return removing(reference)

    monkeypatch.setattr(engine, "remove", remove_after_a_signal)
    assert socker_run(node, "busybox:1.36", "true") == 3
    assert [(r["result"], r.get("status")) for r in audited()] == [("created", None), ("exited", 3)]
    assert engine.containers == {} and not any(state_dir.iterdir())


def test_a_signal_while_the_guardian_is_forked_ends_the_run_once_and_leaves_nothing(node, state_dir, monkeypatch):
    engine, context, audited = node
    guardians = []

    def fork_then_interrupted():
        pid = os.fork()
        if pid:
            guardians.append(pid)
            os.kill(os.getpid(), signal.SIGINT)  # ^C the instant the guardian exists
        return pid

    monkeypatch.setattr(context.privileges, "fork_root_child", fork_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        socker_run(node, "busybox:1.36", "true")
    [pid] = guardians
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    [end] = audited()
    assert (end["result"], end["kind"]) == ("interrupted", "create") and end["container"].startswith("socker-")
    assert not any(state_dir.iterdir()) and engine.containers == {}


def test_once_the_policy_said_yes_a_host_path_that_fails_is_a_failure_not_a_refusal(node, monkeypatch):
    def out_of_descriptors(mounts):
        raise HostPathError("/home/alice/d: Too many open files")

    monkeypatch.setattr(commands.hostpaths, "pin", out_of_descriptors)
    with pytest.raises(HostPathError):
        socker_run(node, "busybox:1.36", "true")
    [failed] = node[2]()
    assert (failed["result"], failed["kind"]) == ("failed", "place") and "Too many" in failed["reason"]


# ---------------------------------------------------------------- what the README says of it

README = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()


def test_the_readme_lists_the_results_a_run_can_end_with_and_its_stages(audited):
    run = trail()
    run.created(CONTAINER_ID)
    for end in (lambda t: t.exited(0), lambda t: t.failed("x"),
                lambda t: t.write_end("killed", {"reason": "socker ended first"})):  # the guardian's word
        end(trail())
    for raised in (PolicyError("no"), KeyboardInterrupt()):
        with pytest.raises(type(raised)):
            with trail().ends_if_raised():
                raise raised
    written = {record["result"] for record in audited()}
    audit_section = README.split("### Audit", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `(\w+)` \|", audit_section, re.M)) - {"result"}  # less the header
    assert written == documented == {"created", "exited", "refused", "failed", "interrupted", "killed"}
    stages = re.search(r"The stages, in order: (.*?)\. Only the first four refuse", audit_section, re.S).group(1)
    assert tuple(re.findall(r"`(\w+)`", stages)) == lifecycle.STAGES and lifecycle.STAGES.index("place") == 4
