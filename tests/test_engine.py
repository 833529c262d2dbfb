"""The engine requests socker makes, pinned whole: what the real engine would receive.

The Docker SDK builds each request; a fake transport records it. The create
request is the one that matters most: every field of it is spelled out here
for each kind of run, so that a change to any of them fails a test.
"""

import base64
import collections
import json
import re
import socket
import threading
import urllib.parse

import docker
import pytest
import requests
from hypothesis import given, settings, strategies as st

from helpers import JOB, authorize_run, make_config, make_identity
from fake_engine_api import FakeEngineAPI, FakePrivileges, client
from socker import config, imageref, model
from socker.engine import bodies, connection, translate
from socker.engine import Engine
from socker.errors import (Conflict, DigestMismatch, DiskFull, EngineError, HostPathError, NotFound, PolicyError,
                           TimedOut, Unauthorized, Unreachable, Untrusted, UsageError)
from socker.model import Mount

IMAGE = {"Id": "sha256:" + "ab" * 32, "Config": {"Entrypoint": None, "Cmd": ["sh"]}}
NAME = "socker-1000-0123456789ab"
IDENTITY_FILES = (Mount("/run/socker/x/passwd", "/etc/passwd", True), Mount("/run/socker/x/group", "/etc/group", True))
HELPER = Mount("/usr/local/lib/socker/socker-chdir", "/.socker-chdir", True)
JOB_PARENT = "/system.slice/slurmstepd.scope/job_4242/step_0/user"


def bind(source, target, read_only):
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only,
            "BindOptions": {"Propagation": "rprivate"}}


HOME = bind("/home/alice", "/home/alice", False)
IDENTITY_BINDS = [bind("/run/socker/x/passwd", "/etc/passwd", True), bind("/run/socker/x/group", "/etc/group", True),
                  bind("/usr/local/lib/socker/socker-chdir", "/.socker-chdir", True)]


def expected(host_config=None, **config_fields):
    """The whole create body of a plain `socker run IMG id` by alice in her home, with changes."""
    body = {
        "AttachStderr": True, "AttachStdin": False, "AttachStdout": True,
        "Cmd": ["id"],
        "Entrypoint": ["/.socker-chdir", "/home/alice"],
        "Env": ["HOME=/home/alice", "USER=alice", "LOGNAME=alice"],
        "Image": IMAGE["Id"],
        "Labels": {"socker": "1", "socker.uid": "1000"},
        "NetworkDisabled": True,
        "OpenStdin": False, "StdinOnce": False, "Tty": False,
        "User": "1000:1000",
        "WorkingDir": "/",
        "HostConfig": {
            "AutoRemove": False,
            "CapAdd": [], "CapDrop": ["ALL"],
            "CgroupParent": "",
            "Devices": [],
            "GroupAdd": ["100", "2000"],
            "Init": True,
            "IpcMode": "private",
            "LogConfig": {"Config": {}, "Type": "none"},
            "Memory": 2 << 30, "MemorySwap": 2 << 30, "NanoCpus": 1_000_000_000, "PidsLimit": 1024,
            "Mounts": [HOME, *IDENTITY_BINDS],
            "NetworkMode": "none",
            "PidMode": "", "UTSMode": "", "UsernsMode": "",
            "Privileged": False,
            "PublishAllPorts": False,
            "RestartPolicy": {"Name": "no"},
            "Runtime": "runc",
            "SecurityOpt": ["no-new-privileges"],
        },
    }
    body.update(config_fields)
    body["HostConfig"] = {**body["HostConfig"], **(host_config or {})}
    return {k: v for k, v in body.items() if v is not None}


def create_body(spec, image=IMAGE, cgroup_parent=""):
    fake = FakeEngineAPI({("POST", "/containers/create"): (201, {"Id": "c0ffee"})})
    container_id = Engine("/x", FakePrivileges(), api=client(fake)).create(
        spec, image, NAME, extra_mounts=(*IDENTITY_FILES, HELPER), cgroup_parent=cgroup_parent, chdir=HELPER.target)
    assert container_id == "c0ffee"
    (body,) = fake.bodies("POST", "/containers/create")
    return body


def test_a_plain_run_outside_a_job():
    assert create_body(authorize_run("busybox:1.36", "id")) == expected()


def test_a_run_in_a_job_has_the_job_cgroup_as_parent_and_no_limits_of_its_own():
    spec = authorize_run("busybox:1.36", "id", job=JOB)
    body = create_body(spec, cgroup_parent=JOB_PARENT)
    limits_removed = {k: v for k, v in expected()["HostConfig"].items()
                      if k not in ("Memory", "MemorySwap", "NanoCpus", "PidsLimit")}
    assert body == {**expected(Labels={"socker": "1", "socker.uid": "1000", "socker.job": "4242"}),
                    "HostConfig": {**limits_removed, "CgroupParent": JOB_PARENT}}


GPUS = config.from_document({"images": ["busybox:1.36"], "gpus": {
    "units": ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidia2"], "shared": ["/dev/nvidiactl", "/dev/nvidia-uvm"],
    "libraries": ["/usr/lib/gpu/libcuda.so.1"], "variables": ["CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"]}})


def device(path):
    return {"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}


def test_a_gpu_run_gets_exactly_its_units_the_shared_devices_the_libraries_and_their_numbers():
    spec = authorize_run("-e", "CUDA_VISIBLE_DEVICES=0,1,2", "-e", "NVIDIA_VISIBLE_DEVICES=all", "busybox:1.36",
                         "id", job=JOB, config=GPUS, gpu_units=("/dev/nvidia0", "/dev/nvidia2"))
    body = create_body(spec, cgroup_parent=JOB_PARENT)
    assert body["HostConfig"]["Devices"] == [device("/dev/nvidia0"), device("/dev/nvidia2"),
                                             device("/dev/nvidiactl"), device("/dev/nvidia-uvm")]
    assert "DeviceCgroupRules" not in body["HostConfig"] and "DeviceRequests" not in body["HostConfig"]
    assert body["HostConfig"]["Runtime"] == "runc"
    assert body["HostConfig"]["Mounts"] == [HOME, bind("/usr/lib/gpu/libcuda.so.1", "/usr/lib/gpu/libcuda.so.1", True),
                                            *IDENTITY_BINDS]
    # The caller's -e of a GPU variable is overwritten, not repeated: the first of two would win.
    assert body["Env"] == ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "CUDA_VISIBLE_DEVICES=0,1",
                           "NVIDIA_VISIBLE_DEVICES=void", "ROCR_VISIBLE_DEVICES=0,1"]


def test_a_run_without_gpus_on_a_gpu_node_gets_no_device_and_no_library_and_hides_the_gpus():
    spec = authorize_run("-e", "CUDA_VISIBLE_DEVICES=0", "busybox:1.36", "id", job=JOB, config=GPUS)
    body = create_body(spec, cgroup_parent=JOB_PARENT)
    assert body["HostConfig"]["Devices"] == []
    assert body["HostConfig"]["Mounts"] == [HOME, *IDENTITY_BINDS]
    assert body["Env"] == ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "CUDA_VISIBLE_DEVICES=",
                           "NVIDIA_VISIBLE_DEVICES=void", "ROCR_VISIBLE_DEVICES="]


def test_an_interactive_terminal():
    body = create_body(authorize_run("-it", "busybox:1.36", "sh"))
    assert body == expected(Cmd=["sh"], OpenStdin=True, StdinOnce=True, AttachStdin=True, Tty=True,
                            Env=["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "TERM=xterm-256color"])


def test_the_hosts_network_when_the_admin_chose_it():
    body = create_body(authorize_run("busybox:1.36", "id", config=make_config(network="host")))
    assert body == expected({"NetworkMode": "host"}, NetworkDisabled=False)


def test_volumes_workdir_and_environment():
    spec = authorize_run("-v", "/scratch/alice:/data:ro", "-v", "/home/alice/a.txt:/in.txt", "-w", "/data",
                         "-e", "X=1", "busybox:1.36", "ls")
    body = create_body(spec)
    assert body == expected(
        {"Mounts": [HOME, bind("/scratch/alice", "/data", True), bind("/home/alice/a.txt", "/in.txt", False),
                    *IDENTITY_BINDS]},
        Cmd=["ls"], Entrypoint=["/.socker-chdir", "/data"],
        Env=["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "X=1"])


def test_the_images_entrypoint_and_command_run_behind_the_helper():
    image = {"Id": IMAGE["Id"], "Config": {"Entrypoint": ["/bin/app", "--serve"], "Cmd": ["--port", "1"]}}
    body = create_body(authorize_run("busybox:1.36"), image=image)
    assert body == expected(Cmd=["--port", "1"], Entrypoint=["/.socker-chdir", "/home/alice", "/bin/app", "--serve"])


def test_the_limits_outside_jobs_come_from_the_config():
    limits = model.Limits(memory_bytes=512 << 20, cpus=0.5, pids=64, memory_swap_bytes=512 << 20)
    body = create_body(authorize_run("busybox:1.36", "id", config=make_config(outside_jobs=limits)))
    assert body == expected({"Memory": 512 << 20, "MemorySwap": 512 << 20, "NanoCpus": 500_000_000, "PidsLimit": 64})


# ---------------------------------------------------------------- the engine's errors, typed

def engine_answering(answers):
    fake = FakeEngineAPI(answers)
    return Engine("/x", FakePrivileges(), api=client(fake)), fake


def test_a_missing_image_is_none_and_any_other_error_is_raised():
    engine, _ = engine_answering({("GET", "/images/present/json"): (200, {"Id": "sha256:1"})})
    assert engine.image("present") == {"Id": "sha256:1"}
    assert engine.image("absent") is None
    engine, _ = engine_answering({("GET", "/json"): (500, {"message": "disk on fire"})})
    with pytest.raises(EngineError, match="inspect image x: disk on fire") as raised:
        engine.image("x")
    assert type(raised.value) is EngineError


@pytest.mark.parametrize("status, kind", [(404, NotFound), (409, Conflict), (500, EngineError)])
def test_each_status_becomes_its_type(status, kind):
    engine, _ = engine_answering({("POST", "/start"): (status, {"message": "no"})})
    with pytest.raises(kind, match="start container: no") as raised:
        engine.start("c0ffee")
    assert type(raised.value) is kind
    assert (raised.value.what, raised.value.detail, raised.value.status) == ("start container", "no", status)


def test_remove_is_false_for_a_container_that_is_not_there_and_true_while_it_is_being_removed():
    engine, fake = engine_answering({("DELETE", "/containers/busy"): (409, {"message": "removal in progress"}),
                                     ("DELETE", "/containers/there"): (204, {})})
    assert engine.remove("gone") is False
    assert engine.remove("busy") is True
    assert engine.remove("there") is True
    assert [path for method, path, _ in fake.requests] == [
        "/v1.41/containers/gone", "/v1.41/containers/busy", "/v1.41/containers/there"]


def test_wait_is_none_while_the_container_runs():
    engine, _ = engine_answering({("POST", "/wait"): requests.exceptions.ReadTimeout("slow")})
    assert engine.wait("c0ffee", timeout=1) is None
    engine, _ = engine_answering({("POST", "/wait"): (200, {"StatusCode": 3})})
    assert engine.wait("c0ffee", timeout=1) == 3


def test_a_timeout_elsewhere_is_typed_and_an_unreachable_engine_says_so():
    engine, _ = engine_answering({("POST", "/start"): requests.exceptions.ReadTimeout("slow")})
    with pytest.raises(TimedOut, match="did not answer in time"):
        engine.start("c0ffee")
    engine, _ = engine_answering({("POST", "/start"): requests.exceptions.ConnectionError("refused")})
    with pytest.raises(EngineError, match="cannot talk to the Docker engine at /x: refused") as raised:
        engine.start("c0ffee")
    assert raised.value.status is None  # never answered


# ---------------------------------------------------------------- pulls

PULLED = imageref.parse("registry.example.org:5443/bio/bowtie:2.5")
DIGEST = "sha256:" + "cd" * 32


def stream(*messages):
    return b"".join(json.dumps(m).encode() + b"\r\n" for m in messages)


def test_a_pull_streams_the_engines_messages_and_carries_the_credentials_in_its_header():
    messages = [{"status": "Pulling from bio/bowtie", "id": "2.5"}, {"status": f"Digest: {DIGEST}"}]
    engine, fake = engine_answering({("POST", "/images/create"): (200, stream(*messages))})
    credentials = config.Credentials("puller", "s3cret")
    assert list(engine.pull(PULLED, credentials, stall_timeout=5)) == messages
    [request] = fake.sent
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
    assert query == {"fromImage": ["registry.example.org:5443/bio/bowtie"], "tag": ["2.5"]}
    auth = json.loads(base64.urlsafe_b64decode(request.headers["X-Registry-Auth"]))
    assert auth == {"username": "puller", "password": "s3cret", "serveraddress": "registry.example.org:5443"}


def test_a_pinned_image_is_pulled_by_its_digest_and_without_credentials_no_header_is_sent():
    engine, fake = engine_answering({("POST", "/images/create"): (200, stream({"status": "ok"}))})
    list(engine.pull(imageref.parse(f"registry.example.org:5443/bio/bowtie:2.5@{DIGEST}"), None, stall_timeout=5))
    [request] = fake.sent
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)["tag"] == [DIGEST]
    assert "X-Registry-Auth" not in request.headers


@pytest.mark.parametrize("message, kind", [
    ('Get "https://r:5445/v2/": dial tcp [::1]:5445: connect: connection refused', Unreachable),
    ('Get "https://r/v2/": dial tcp: lookup r on 10.0.0.2:53: no such host', Unreachable),
    ('Get "https://r/v2/": net/http: TLS handshake timeout', Unreachable),
    ('Get "https://r/v2/": x509: certificate signed by unknown authority', Untrusted),
    ('Head "https://r/v2/bio/bowtie/manifests/2.5": no basic auth credentials', Unauthorized),
    ("unauthorized: authentication required", Unauthorized),
    ("manifest for r/bio/bowtie:2.6 not found: manifest unknown: manifest unknown", NotFound),
    (f"manifest verification failed for digest {DIGEST}", DigestMismatch),
    ("filesystem layer verification failed for digest sha256:00", DigestMismatch),
    ("failed to register layer: write /payload: no space left on device", DiskFull),
    ("something else went wrong", EngineError),
])
def test_a_failed_pull_is_typed_by_what_the_engine_says(message, kind):
    for answer in ((500, {"message": message}), (200, stream({"status": "Pulling fs layer", "id": "a"},
                                                             {"errorDetail": {"message": message}, "error": message}))):
        engine, _ = engine_answering({("POST", "/images/create"): answer})
        with pytest.raises(kind) as raised:
            list(engine.pull(PULLED, None, stall_timeout=5))
        assert type(raised.value) is kind and str(raised.value) == raised.value.detail == message
        assert raised.value.status == (500 if answer[0] == 500 else None)  # a failure mid-stream has no status


def test_a_pull_the_engine_does_not_find_is_not_found_whatever_it_says():
    engine, _ = engine_answering({("POST", "/images/create"): (404, {"message": "pull access denied"})})
    with pytest.raises(NotFound):
        list(engine.pull(PULLED, None, stall_timeout=5))


def test_a_silent_engine_is_given_up_on_after_the_stall_timeout(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    answered = threading.Event()

    def engine_that_starts_and_stops():
        connection, _ = server.accept()
        connection.recv(65536)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        line = json.dumps({"status": "Pulling from bio/bowtie"}).encode() + b"\r\n"
        connection.sendall(b"%x\r\n%s\r\n" % (len(line), line))
        answered.wait()  # silent, with the connection open, until socker has given up
        connection.close()

    threading.Thread(target=engine_that_starts_and_stops, daemon=True).start()
    engine = Engine(path, FakePrivileges())
    pulling = engine.pull(PULLED, None, stall_timeout=1)
    try:
        assert next(pulling) == {"status": "Pulling from bio/bowtie"}
        with pytest.raises(TimedOut):
            next(pulling)
    finally:
        answered.set()


def test_images_and_the_containers_that_use_one():
    engine, fake = engine_answering({
        ("GET", "/images/json"): (200, [{"Id": "sha256:1", "RepoTags": ["a:1"], "RepoDigests": []}]),
        ("GET", "/containers/json"): (200, [{"Id": "c1"}, {"Id": "c2"}]),
        ("DELETE", "/images/a:1"): (409, {"message": "image is being used"}),
    })
    assert engine.images() == [{"Id": "sha256:1", "RepoTags": ["a:1"], "RepoDigests": []}]
    assert engine.containers_using("sha256:1") == ["c1", "c2"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(fake.sent[1].url).query)
    assert json.loads(query["filters"][0]) == {"ancestor": ["sha256:1"]} and query["all"] == ["1"]
    with pytest.raises(Conflict):
        engine.remove_image("a:1")
    with pytest.raises(NotFound):
        engine.remove_image("b:1")


# ---------------------------------------------------------------- root only for the connect

def test_root_is_held_to_connect_to_the_socket_and_not_while_the_answer_is_read(tmp_path):
    path = str(tmp_path / "engine.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    privileges = FakePrivileges()
    seen = {}

    def answer():
        connection, _ = server.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            seen["depth while the request is served"] = privileges.depth
            body = b'{"Version": "20.10.24", "ApiVersion": "1.41"}'
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    thread = threading.Thread(target=answer)
    thread.start()
    connects = []
    socket_connect = connection.unixconn.UnixHTTPConnection.connect

    def recording_connect(self):
        connects.append(privileges.depth)
        socket_connect(self)

    connection.unixconn.UnixHTTPConnection.connect = recording_connect
    try:
        assert Engine(path, privileges).version()["Version"] == "20.10.24"
    finally:
        connection.unixconn.UnixHTTPConnection.connect = socket_connect
        thread.join(5)
        server.close()
    assert connects == [1]
    assert seen == {"depth while the request is served": 0}
    assert privileges.depth == 0


def test_the_callers_limits_become_the_containers_ulimits():
    limits = (("nofile", 64, 64), ("stack", -1, -1), ("nproc", 300, 4000))
    body = create_body(authorize_run("busybox:1.36", "id", identity=make_identity(limits=limits)))
    assert body == expected({"Ulimits": [{"Name": "nofile", "Soft": 64, "Hard": 64},
                                         {"Name": "stack", "Soft": -1, "Hard": -1},
                                         {"Name": "nproc", "Soft": 300, "Hard": 4000}]},
                            Labels={"socker": "1", "socker.uid": "1000"})


def test_in_a_job_the_container_gets_the_jobs_memory_limit_and_a_pids_limit():
    spec = authorize_run("busybox:1.36", "id", job=JOB).replace(
        limits=model.Limits(memory_bytes=200 << 20, cpus=None, pids=4096, memory_swap_bytes=-1))
    host_config = create_body(spec, cgroup_parent=JOB_PARENT)["HostConfig"]
    assert {k: host_config.get(k) for k in ("Memory", "MemorySwap", "NanoCpus", "PidsLimit", "CgroupParent")} == {
        "Memory": 200 << 20, "MemorySwap": -1, "NanoCpus": None, "PidsLimit": 4096, "CgroupParent": JOB_PARENT}


# ---------------------------------------------------------------- what the engine reads is what was checked

def go_view(value):
    """A decoded JSON value as Go's encoding/json has it: each lone surrogate becomes U+FFFD."""
    if isinstance(value, str):
        return re.sub("[\ud800-\udfff]", "\ufffd", value)
    if isinstance(value, list):
        return [go_view(v) for v in value]
    if isinstance(value, dict):
        return {go_view(k): go_view(v) for k, v in value.items()}
    return value


TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\0:"), min_size=1, max_size=6)
SURROGATES = st.sampled_from(["\udcfe", "\udcff", "\ud800", "\udc80"])
# Mostly text that reads the same everywhere, so that many requests are accepted; some with the
# lone surrogates that Go would read otherwise.
PIECE = st.sampled_from([TEXT] * 8 + [SURROGATES, st.builds(lambda a, b: a + b, TEXT, SURROGATES)]).flatmap(
    lambda strategy: strategy)


# Of the generated requests, at least this share is accepted: were none, the property below would
# hold of nothing.
MIN_ACCEPTED = 0.2


def test_every_request_that_is_accepted_reads_the_same_to_the_engine():
    outcomes = collections.Counter()

    @settings(max_examples=300)
    @given(st.lists(st.tuples(st.sampled_from(["-v", "-w", "-e", "arg"]), PIECE, PIECE), max_size=5))
    def accepted_requests_read_the_same(parts):
        args, command = [], []
        for kind, first, second in parts:
            if kind == "-v":
                args += ["-v", f"/scratch/alice/{first}:/data/{second}"]
            elif kind == "-w":
                args += ["-w", f"/work/{first}"]
            elif kind == "-e":
                args += ["-e", f"V{abs(hash(first)) % 100}={second}"]
            else:
                command.append(first + second)
        try:
            spec = authorize_run(*args, "busybox:1.36", *command)
        except (UsageError, PolicyError, HostPathError):
            outcomes["refused"] += 1
            return
        outcomes["accepted"] += 1
        body = create_body(spec)
        assert go_view(body) == body

    accepted_requests_read_the_same()
    assert outcomes["accepted"] >= MIN_ACCEPTED * sum(outcomes.values()), outcomes


def test_a_terminal_gets_the_callers_size_before_the_first_instruction():
    fake = FakeEngineAPI({("POST", "/containers/create"): (201, {"Id": "c0ffee"})})
    Engine("/x", FakePrivileges(), api=client(fake)).create(
        authorize_run("-t", "busybox:1.36", "sh"), IMAGE, NAME, extra_mounts=(*IDENTITY_FILES, HELPER), cgroup_parent="",
        chdir=HELPER.target, terminal_size=(30, 100))
    (body,) = fake.bodies("POST", "/containers/create")
    assert body["Entrypoint"] == ["/.socker-chdir", "--size", "30", "100", "/home/alice"]


# ---------------------------------------------------------------- requests as data, errors with fields

def test_the_attach_request_is_exactly_an_upgrade_of_the_containers_stdio():
    assert bodies.attach("c0ffee", stdin=False) == (
        b"POST /v1.41/containers/c0ffee/attach?stream=1&stdout=1&stderr=1&stdin=0 HTTP/1.1\r\n"
        b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")


def test_a_pulls_query_names_the_digest_over_the_tag_and_its_header_carries_the_credentials():
    pinned = imageref.parse("registry.example.org/bio/tool@sha256:" + "c" * 64)
    query, headers = bodies.pull(pinned, config.Credentials(username="puller", password="s3cret"))
    assert query == {"fromImage": "registry.example.org/bio/tool", "tag": "sha256:" + "c" * 64}
    assert json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"])) == {
        "username": "puller", "password": "s3cret", "serveraddress": "registry.example.org"}
    assert bodies.pull(imageref.parse("busybox"), None) == ({"fromImage": "docker.io/library/busybox",
                                                             "tag": "latest"}, {})


@pytest.mark.parametrize("status, kind", [(404, NotFound), (409, Conflict), (500, EngineError)])
def test_an_engine_error_carries_what_was_asked_the_engines_words_and_its_status(status, kind):
    response = requests.Response()
    response.status_code = status
    error = translate.request_error(docker.errors.APIError("x", response=response, explanation="no such thing"),
                                    "inspect image busybox", "/run/docker.sock")
    assert type(error) is kind
    assert (error.what, error.detail, error.status) == ("inspect image busybox", "no such thing", status)
    assert str(error) == "inspect image busybox: no such thing"
