"""One pull per node, against a fake engine on a Unix socket: the lock, the puller and its reports.

The sockers are forked processes of the test, as real as the lock between them:
flock(2) on files under a temporary directory. The engine counts the pulls it is
asked for; the registry behind it is imaginary.
"""

import base64
import json
import os
import resource
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

import pytest

from helpers import IDENTITY
from fake_engine_api import FakePrivileges
from socker import audit, config, imageref
from socker.registry import pulled, pulllock, pulls
from socker.engine import Engine
from socker.errors import EngineError, PolicyError

pytestmark = pytest.mark.root  # lock, record and credentials files must be root's

REGISTRY = "registry.example.org:5443"
REFERENCE = f"{REGISTRY}/bio/bowtie:2.5"
DIGEST = "sha256:" + "ef" * 32
IMAGE_ID = "sha256:" + "12" * 32


# The most sockers a test starts at once: each may connect before the engine accepts any.
AT_ONCE = 8


class FakeEngine(socketserver.ThreadingUnixStreamServer):
    """Has the image once a pull of it ended; a pull takes `seconds` and fails with `failure` if given."""
    daemon_threads = True
    request_queue_size = 4 * AT_ONCE  # socketserver's default of 5 refuses the 6th connection waiting

    def __init__(self, path, seconds=0.0, failure=None, serving=True, reports=1, plain_http=()):
        self.seconds, self.failure, self.reports = seconds, failure, reports
        self.plain_http = plain_http  # registries the engine reaches without verified TLS
        self.pulls, self.has_image = [], False
        super().__init__(path, _Handler)
        if serving:
            threading.Thread(target=self.serve_forever, daemon=True).start()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up is no error here
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path.endswith("/info"):
            index = {host: {"Name": host, "Secure": host not in self.server.plain_http}
                     for host in (REGISTRY, *self.server.plain_http)}
            self._reply(200, {"RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": index}})
        elif self.server.has_image and "/images/" in self.path and self.path.endswith("/json"):
            self._reply(200, {"Id": IMAGE_ID})
        else:
            self._reply(404, {"message": "No such image"})

    def do_POST(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        self.server.pulls.append((query["fromImage"][0], query["tag"][0], self.headers.get("X-Registry-Auth")))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk({"status": "Pulling from bio/bowtie", "id": "2.5"})
        for n in range(self.server.reports):
            self._chunk({"status": "Downloading", "id": "aaa", "progressDetail": {"current": n, "total": 2 ** 40},
                         "progress": "[=>    ]" + " " * 100})
        time.sleep(self.server.seconds)
        if self.server.failure:
            self._chunk({"errorDetail": {"message": self.server.failure}, "error": self.server.failure})
        else:
            self._chunk({"status": "Pull complete", "id": "aaa"})
            self._chunk({"status": f"Digest: {DIGEST}"})
            self.server.has_image = True
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, message):
        line = json.dumps(message).encode() + b"\r\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
        self.wfile.flush()

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def node(tmp_path, monkeypatch):
    """Lock and record directories of the test's own; audit records kept in a list, not sent to syslog."""
    monkeypatch.setattr(pulllock, "LOCK_DIRECTORY", str(tmp_path / "run" / "pulls"))
    monkeypatch.setattr(pulled, "DIRECTORY", str(tmp_path / "lib" / "pulled"))
    records = tmp_path / "audit"
    monkeypatch.setattr(audit, "record", lambda facility, fields: records.open("a").write(json.dumps(fields) + "\n"))
    os.chmod(tmp_path, 0o755)
    return tmp_path


def settings_for(engine_socket, credentials=None, **registry):
    return config.from_document({
        "engine": {"socket": str(engine_socket)},
        "registries": [{"host": REGISTRY, **({"credentials": str(credentials)} if credentials else {}), **registry}],
        "images": [f"{REGISTRY}/bio/*", "ghcr.io/org/tool:1.0"],
    })


def obtain(settings, reference=REFERENCE):
    privileges = FakePrivileges()
    return pulls.obtain(imageref.parse(reference), settings, Engine(settings.socket, privileges), privileges, IDENTITY)


def in_processes(count, settings):
    """`count` sockers at once, each in a process of its own; returns [(exit status, stderr)]."""
    children = []
    for _ in range(count):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.dup2(write_fd, 2)
            sys.stderr = os.fdopen(2, "w")
            try:
                obtain(settings)
                status = 0
            except EngineError as e:
                print(f"socker: {e}", file=sys.stderr, flush=True)
                status = 125
            os._exit(status)
        os.close(write_fd)
        children.append((pid, read_fd))
    results = []
    for pid, read_fd in children:
        with os.fdopen(read_fd) as said:
            text = said.read()
        _, status = os.waitpid(pid, 0)
        results.append((os.waitstatus_to_exitcode(status), text))
    return results


def test_a_node_that_has_the_image_takes_no_lock(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    engine.has_image = True
    image, digest = obtain(settings_for(engine.server_address))
    assert (image["Id"], digest) == (IMAGE_ID, None)
    assert engine.pulls == [] and not os.path.exists(pulllock.LOCK_DIRECTORY)


def test_an_image_the_node_lacks_is_pulled_recorded_and_audited(node, tmp_path, capsys):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    image, digest = obtain(settings_for(engine.server_address))
    assert (image["Id"], digest) == (IMAGE_ID, DIGEST)
    assert engine.pulls == [(f"{REGISTRY}/bio/bowtie", "2.5", None)]
    said = capsys.readouterr().err.splitlines()
    assert said[0] == f"socker: pulling {REFERENCE}" and said[1].startswith(f"socker: pulled {REFERENCE} ({DIGEST}, ")
    [record] = pulled.every()
    assert (record.reference, record.digest, record.image_id, record.user) == (REFERENCE, DIGEST, IMAGE_ID, "alice")
    [audited] = [json.loads(line) for line in (node / "audit").read_text().splitlines()]
    assert audited == {"action": "pull", "user": "alice", "uid": 1000, "image": REFERENCE, "digest": DIGEST,
                       "image_id": IMAGE_ID, "result": "pulled"}


def test_a_pinned_reference_is_pulled_by_its_digest(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    obtain(settings_for(engine.server_address), f"{REGISTRY}/bio/bowtie@{DIGEST}")
    assert engine.pulls == [(f"{REGISTRY}/bio/bowtie", DIGEST, None)]


def test_the_fake_engine_queues_every_socker_of_a_test_before_it_accepts_one(tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), serving=False)
    # Each socker may have two connections open: its own and its puller's.
    clients = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2 * AT_ONCE)]
    try:
        for client in clients:
            client.setblocking(False)  # as requests' sockets with a time-out: a full queue is EAGAIN
            client.connect(engine.server_address)
    finally:
        for client in clients:
            client.close()
        engine.server_close()


def test_many_sockers_at_once_pull_once_and_the_others_say_they_wait(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), seconds=1.5)
    results = in_processes(AT_ONCE, settings_for(engine.server_address))
    assert [status for status, _ in results] == [0] * AT_ONCE
    assert len(engine.pulls) == 1
    said = sorted(text for _, text in results)
    assert sum(text.startswith(f"socker: pulling {REFERENCE}\n") for text in said) == 1
    assert said.count(f"socker: waiting for another socker to pull {REFERENCE}\n") == AT_ONCE - 1


def test_the_waiting_sockers_give_the_reason_a_pull_failed_and_do_not_try_again(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), seconds=1.5, failure="manifest unknown")
    results = in_processes(4, settings_for(engine.server_address))
    reason = f"socker: cannot pull {REFERENCE}: {REFERENCE} is not in the registry (no such image, tag or digest)"
    assert [status for status, _ in results] == [125] * 4
    assert all(text.rstrip("\n").splitlines()[-1] == reason for _, text in results), results
    assert len(engine.pulls) == 1
    assert pulled.every() == []


def test_the_next_socker_after_a_failed_pull_tries_again(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), failure="unauthorized: authentication required")
    settings = settings_for(engine.server_address)
    for _ in range(2):
        with pytest.raises(EngineError, match="wants credentials, and none are configured"):
            obtain(settings)
    assert len(engine.pulls) == 2


def test_credentials_go_to_the_engine_alone(node, tmp_path, capsys):
    engine = FakeEngine(str(tmp_path / "engine.sock"), failure="unauthorized: authentication required")
    credentials = tmp_path / "registry.yaml"
    credentials.write_text("username: puller\npassword: s3cret\n")
    os.chmod(credentials, 0o600)
    with pytest.raises(EngineError) as raised:
        obtain(settings_for(engine.server_address, credentials))
    assert str(raised.value) == f"cannot pull {REFERENCE}: the registry {REGISTRY} refused socker's credentials"
    [(_, _, auth)] = engine.pulls
    assert json.loads(base64.urlsafe_b64decode(auth))["password"] == "s3cret"
    assert "s3cret" not in capsys.readouterr().err + (node / "audit").read_text()


def test_an_insecure_credentials_file_stops_the_pull_before_the_engine_hears_of_it(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    credentials = tmp_path / "registry.yaml"
    credentials.write_text("username: puller\npassword: s3cret\n")
    os.chmod(credentials, 0o644)
    with pytest.raises(EngineError, match=f"cannot pull {REFERENCE}: {credentials}: insecure: file is readable"):
        obtain(settings_for(engine.server_address, credentials))
    assert engine.pulls == []


def test_an_allowed_image_on_a_registry_that_is_not_listed_is_never_pulled(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    with pytest.raises(PolicyError, match="not present on this node, and its registry ghcr.io is not one socker may"):
        obtain(settings_for(engine.server_address), "ghcr.io/org/tool:1.0")
    assert engine.pulls == [] and not os.path.exists(pulllock.LOCK_DIRECTORY)


def test_a_registry_that_stalls_is_given_up_on(node, tmp_path):
    # An engine that would answer after 5 s: only the 1 s timeout can end the pull with this error.
    engine = FakeEngine(str(tmp_path / "engine.sock"), seconds=5)
    with pytest.raises(EngineError, match=f"the registry {REGISTRY} did not answer within 1 s"):
        obtain(settings_for(engine.server_address, timeout=1))


def test_a_socker_that_reads_none_of_its_pullers_reports_holds_up_no_other(node, tmp_path):
    # Far more reports than a pipe holds: a puller that waited for its reader would wait for good.
    engine = FakeEngine(str(tmp_path / "engine.sock"), reports=5000)
    settings = settings_for(engine.server_address)
    read_fd, write_fd = os.pipe()
    stopped = os.fork()
    if stopped == 0:
        os.dup2(write_fd, 2)
        sys.stderr = os.fdopen(2, "w")
        obtain(settings)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as said:
        assert said.readline() == f"socker: pulling {REFERENCE}\n"
        os.kill(stopped, signal.SIGSTOP)  # as ^Z would
        try:
            image, digest = obtain(settings)
            assert (image["Id"], digest) == (IMAGE_ID, None)
        finally:
            os.kill(stopped, signal.SIGCONT)
        said.read()
    _, status = os.waitpid(stopped, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(engine.pulls) == 1
    assert os.listdir(pulllock.LOCK_DIRECTORY) == []


@pytest.mark.parametrize("failure", [None, "manifest unknown"])
def test_no_lock_file_is_left_when_the_pulls_end(node, tmp_path, failure):
    engine = FakeEngine(str(tmp_path / "engine.sock"), seconds=0.5, failure=failure)
    results = in_processes(3, settings_for(engine.server_address))
    assert [status for status, _ in results] == [125 if failure else 0] * 3
    assert os.listdir(pulllock.LOCK_DIRECTORY) == []


def test_a_registry_the_engine_reaches_without_verified_tls_gets_neither_credentials_nor_a_pull(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), plain_http=(REGISTRY,))
    credentials = tmp_path / "registry.yaml"
    credentials.write_text("username: puller\npassword: s3cret\n")
    os.chmod(credentials, 0o600)
    with pytest.raises(EngineError, match=f"cannot pull {REFERENCE}: registry {REGISTRY}: the engine reaches it "
                                          "without verified TLS"):
        obtain(settings_for(engine.server_address, credentials))
    assert engine.pulls == []
    [audited] = [json.loads(line) for line in (node / "audit").read_text().splitlines()]
    assert audited["result"] == "failed" and "without verified TLS" in audited["reason"]


def test_the_pull_is_recorded_before_the_engine_is_asked_and_forgotten_if_it_fails(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"), seconds=2, failure="manifest unknown")
    seen = []

    def look():
        while not engine.pulls:
            time.sleep(0.01)
        seen.extend(pulled.every())
    looking = threading.Thread(target=look)
    looking.start()
    with pytest.raises(EngineError, match="not in the registry"):
        obtain(settings_for(engine.server_address))
    looking.join()
    assert [(p.reference, p.digest, p.image_id, p.user) for p in seen] == [(REFERENCE, None, None, "alice")]
    assert pulled.every() == []


def test_a_file_size_limit_is_lifted_or_stops_the_pull_before_the_engine_hears_of_it(node, tmp_path):
    engine = FakeEngine(str(tmp_path / "engine.sock"))
    settings = settings_for(engine.server_address)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))  # as the caller's `ulimit -f 0`
        try:
            obtain(settings)
            os._exit(0)
        except EngineError as e:
            os.write(write_fd, str(e).encode())
            os._exit(3)
    os.close(write_fd)
    with os.fdopen(read_fd) as said:
        reason = said.read()
    _, status = os.waitpid(pid, 0)
    if privileges_may_raise_hard_limits():  # the puller has root's limits
        assert os.waitstatus_to_exitcode(status) == 0, reason
        assert [(p.reference, p.digest) for p in pulled.every()] == [(REFERENCE, DIGEST)]
        assert len(engine.pulls) == 1
    else:  # the caller's hard limit stays: nothing is pulled that could not be recorded
        assert os.waitstatus_to_exitcode(status) == 3
        assert reason == f"cannot pull {REFERENCE}: cannot record the pull in {pulled.DIRECTORY}: File too large"
        assert engine.pulls == [] and os.listdir(pulled.DIRECTORY) == []


def privileges_may_raise_hard_limits():
    with open("/proc/self/status") as f:
        bounding = next(line for line in f if line.startswith("CapBnd:"))
    return bool(int(bounding.split()[1], 16) >> 24 & 1)  # CAP_SYS_RESOURCE
