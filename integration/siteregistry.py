"""The harness's site registry (integration/registry/up) and what tests do with it, as root.

Tests push images with the push account (through a throw-away docker configuration), remove
images from the engine so that socker has to pull them, move tags by pushing another image
under the same tag, and count pulls in a registry's access log. The engine resolves a tag with
a HEAD of its manifest and pulls with a GET of the manifest by digest, or pulls a digest with
that GET alone: one pull is one manifest GET.
"""

import hashlib
import json
import os
import re
import secrets
import socket
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.request
from base64 import b64encode
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def _settings(path):
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = value
    return found


SETTINGS = _settings(Path(__file__).with_name("registry") / "settings")
HOST = f"{SETTINGS['REGISTRY_HOST']}:{SETTINGS['REGISTRY_PORT']}"
OTHER_HOST = f"{SETTINGS['REGISTRY_HOST']}:{SETTINGS['OTHER_PORT']}"  # not listed: serves look-alikes
SLOW_HOST = f"{SETTINGS['REGISTRY_HOST']}:{SETTINGS['SLOW_PORT']}"  # while a Throttle runs
SILENT_HOST = f"{SETTINGS['REGISTRY_HOST']}:{SETTINGS['SILENT_PORT']}"  # while a SilentServer runs
CLOSED_HOST = f"{SETTINGS['REGISTRY_HOST']}:{SETTINGS['CLOSED_PORT']}"  # nothing listens
PLAIN_HOST = SETTINGS["PLAIN_HOST"]  # a name of 127.0.0.1, which the engine reaches without verified TLS
NAMESPACE = SETTINGS["NAMESPACE"]
PULL_USER, PUSH_USER = SETTINGS["PULL_USER"], SETTINGS["PUSH_USER"]
ETC = Path(SETTINGS["REGISTRY_ETC"])
STATE = Path(SETTINGS["REGISTRY_STATE"])
LOGS = Path(SETTINGS["REGISTRY_LOGS"])
CA_CERT = ETC / "tls" / "ca.crt"
BASE_IMAGE = "socker-test/busybox:latest"  # what a made image holds besides its own files
UNIQUE_FILE = "/socker-unique"  # a made image's token


# socker's side: where the tests put the pull account's credentials, and what socker records.
CREDENTIALS = Path("/etc/socker/socker-registry.test.yaml")
NAMESPACE_ENTRY = f"{HOST}/{NAMESPACE}/*"
PULL_RECORDS = Path("/var/lib/socker/pulled")


def socker_config(images, registries):
    """socker's configuration listing `registries`, (host, {option: value}) pairs, and allowing `images`."""
    lines = ["registries:"]
    for host, options in registries:
        lines.append(f"  - host: {host}")
        lines += [f"    {key}: {value}" for key, value in options.items()]
    lines.append("images:")
    lines += [f"  - {image}" for image in images]
    lines += ["volumes: [/scratch]", "network: none", "audit:", "  facility: authpriv"]
    return "\n".join(lines) + "\n"


def write_root_file(path, text, mode):
    path.write_text(text)
    os.chown(path, 0, 0)
    os.chmod(path, mode)


def write_credentials(path=CREDENTIALS):
    """The pull account's credentials file, as an administrator installs it for socker."""
    write_root_file(path, f"username: {PULL_USER}\npassword: {password(PULL_USER)}\n", 0o600)


def present(name):
    """Whether the engine has an image by this name."""
    return subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0


def pull_records_naming(name):
    """socker's records of the pulls of `name`."""
    if not PULL_RECORDS.is_dir():
        return []
    return [p for p in PULL_RECORDS.iterdir() if name in p.read_text(errors="replace")]


def password(user):
    return (ETC / f"{user}.password").read_text().strip()


def reference(name, tag="latest", host=HOST, namespace=NAMESPACE):
    """HOST/NAMESPACE/NAME:TAG, as a user names an image of the registry."""
    return f"{host}/{namespace}/{name}:{tag}"


def repository_of(ref):
    """HOST/PATH of a reference HOST/PATH[:TAG][@DIGEST]."""
    name = ref.split("@")[0]
    host, _, path = name.partition("/")
    return f"{host}/{path.rsplit(':', 1)[0]}"


# ------------------------------------------------------------------ the access log

_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>/v2/\S*) HTTP/[0-9.]+" (?P<status>[0-9]{3}) (?P<bytes>[0-9]+) ')
_MANIFEST = re.compile(r"/v2/(?P<repository>.+)/manifests/(?P<reference>[^/?]+)\Z")
_BLOB = re.compile(r"/v2/(?P<repository>.+)/blobs/(?P<digest>sha256:[0-9a-f]{64})\Z")


@dataclass(frozen=True)
class ManifestRequest:
    method: str
    repository: str  # the path in the registry, without the host
    reference: str  # a tag or a digest
    status: int


class AccessLog:
    """A registry's access log from the moment this object was made: what reached the registry since."""

    def __init__(self, host=HOST):
        self.host = host
        self.path = LOGS / f"{host.rsplit(':', 1)[1]}-access.log"
        self.start = self.path.stat().st_size

    def lines(self):
        with self.path.open("rb") as log:
            log.seek(self.start)
            return log.read().decode(errors="replace").splitlines()

    def manifest_requests(self, repository=None):
        """Manifest requests since the mark; only those of `repository` if given (a path in the
        registry, HOST/PATH, or a reference to an image in it)."""
        if repository is not None:
            repository = repository_of(repository).removeprefix(f"{self.host}/")
        found = []
        for line in self.lines():
            request = _REQUEST.search(line)
            manifest = request and _MANIFEST.match(request["path"])
            if manifest and repository in (None, manifest["repository"]):
                found.append(ManifestRequest(request["method"], manifest["repository"], manifest["reference"],
                                             int(request["status"])))
        return found

    def pulls(self, repository=None):
        """How many times images (of `repository`) were pulled since the mark: manifest GETs."""
        return sum(1 for r in self.manifest_requests(repository) if r.method == "GET")

    def blob_bytes(self, repository):
        """How many bytes of the blobs (layers and configs) of `repository` the registry sent since
        the mark: what the pulls transferred."""
        repository = repository_of(repository).removeprefix(f"{self.host}/")
        sent = 0
        for line in self.lines():
            request = _REQUEST.search(line)
            blob = request and request["method"] == "GET" and _BLOB.match(request["path"])
            if blob and blob["repository"] == repository:
                sent += int(request["bytes"])
        return sent


# ------------------------------------------------------------------ the engine and the registry

def docker(*args, env=None, input=None):
    result = subprocess.run(["docker", *args], capture_output=True, text=True, env=env, input=input)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def local_names(repository):
    """Every name the engine keeps for HOST/PATH: its tags and its digests."""
    names = []
    for line in docker("image", "ls", "--digests", "--format", "{{.Repository}} {{.Tag}} {{.Digest}}",
                       repository).splitlines():
        name, tag, digest = line.split()
        names += [f"{name}:{tag}"] if tag != "<none>" else []
        names += [f"{name}@{digest}"] if digest != "<none>" else []
    return names


def remove_from_engine(ref):
    """Make the engine forget every name of ref's repository, so that socker has to pull it.

    An image that no other name holds is removed with its layers.
    """
    for name in local_names(repository_of(ref)):
        if subprocess.run(["docker", "image", "inspect", name], capture_output=True).returncode == 0:
            docker("rmi", name)  # removing a tag may have taken its digest with it


@contextmanager
def logged_in(account, host=HOST):
    """The environment of a docker CLI logged in to `host` as `account` (PUSH_USER or PULL_USER), in
    a configuration of its own that lives as long as the with-block."""
    with tempfile.TemporaryDirectory() as config:
        env = {**os.environ, "DOCKER_CONFIG": config}
        docker("login", "--username", account, "--password-stdin", host, env=env, input=password(account))
        yield env


def push(source, target):
    """Push local image `source` to the registry as `target` (HOST/PATH:TAG) with the push account;
    over an existing tag this moves the tag. Returns the manifest's digest. What the engine calls
    `target` afterwards is what it called so before: nothing, or the image it had pulled."""
    before = _local_id(target)
    with logged_in(PUSH_USER, target.split("/")[0]) as env:
        docker("tag", source, target)
        output = docker("push", target, env=env)
    if before is None:
        docker("rmi", target)
    else:
        docker("tag", before, target)
    return re.search(r"digest: (sha256:[0-9a-f]{64})", output)[1]


def _local_id(name):
    found = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", name], capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def _registry_request(method, ref, reference):
    """`method` on the manifest `reference` (a tag or digest) of ref's repository, as the push account."""
    host, _, path = repository_of(ref).partition("/")
    request = urllib.request.Request(f"https://{host}/v2/{path}/manifests/{reference}", method=method)
    credentials = b64encode(f"{PUSH_USER}:{password(PUSH_USER)}".encode()).decode()
    request.add_header("Authorization", f"Basic {credentials}")
    request.add_header("Accept", "application/vnd.docker.distribution.manifest.v2+json")
    context = ssl.create_default_context(cafile=str(CA_CERT))
    return urllib.request.urlopen(request, context=context, timeout=10)


def manifest_digest(ref):
    """The digest of the manifest the registry serves for HOST/PATH:TAG (a HEAD: no pull)."""
    with _registry_request("HEAD", ref, ref.rsplit(":", 1)[1]) as response:
        return response.headers["Docker-Content-Digest"]


def forget(ref_with_digest):
    """Delete a manifest (HOST/PATH@DIGEST) from the registry, if it is still there; its blobs go at
    the next integration/registry/down."""
    try:
        with _registry_request("DELETE", ref_with_digest, ref_with_digest.split("@")[1]) as response:
            assert response.status == 202, response.status
    except urllib.error.HTTPError as e:
        assert e.code == 404, e  # published twice under one tag: the same manifest


@contextmanager
def serving_instead(pinned, other):
    """The registry serves the manifest of `other` (HOST/PATH:TAG) when asked for `pinned`
    (HOST/PATH@DIGEST), as a tampered registry would, until the with-block ends."""
    port = pinned.split("/")[0].rsplit(":", 1)[1]

    def blob(digest):
        hex_digest = digest.removeprefix("sha256:")
        return STATE / port / "docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"

    target = blob(pinned.split("@")[1])
    original = target.read_bytes()
    target.write_bytes(blob(manifest_digest(other)).read_bytes())
    try:
        yield
    finally:
        target.write_bytes(original)


def make_image(payload_bytes=0, layers=1):
    """A new local image: BASE_IMAGE's files in one layer of its own, plus UNIQUE_FILE holding a
    token and, if asked, a file of `payload_bytes` random bytes (/payload), so that pulling it
    downloads and unpacks that much; then `layers - 1` layers of one small file each, so that a
    pull reports on that many layers. Returns (local tag, token)."""
    token = secrets.token_hex(8)
    base = json.loads(docker("image", "inspect", BASE_IMAGE))[0]
    tag = f"socker-test/made:{token}"
    with tempfile.TemporaryDirectory() as work:
        saved = Path(work) / "base.tar"
        docker("save", "-o", str(saved), BASE_IMAGE)
        first = Path(work) / "layer0.tar"
        with tarfile.open(saved) as image, tarfile.open(first, "w") as out:
            base_layers = json.load(image.extractfile("manifest.json"))[0]["Layers"]
            assert len(base_layers) == 1, base_layers  # images/build makes one-layer images
            with tarfile.open(fileobj=image.extractfile(base_layers[0])) as layer:
                for member in layer:
                    out.addfile(member, layer.extractfile(member) if member.isfile() else None)
            _add_file(out, UNIQUE_FILE, f"{token}\n".encode())
            if payload_bytes:
                _add_file(out, "/payload", os.urandom(payload_bytes))
        files = [first]
        for n in range(1, layers):
            files.append(Path(work) / f"layer{n}.tar")
            with tarfile.open(files[-1], "w") as out:
                _add_file(out, f"/layers/{n}", f"{token} {n}\n".encode())
        config = {"architecture": base["Architecture"], "os": base["Os"],
                  "config": {"Cmd": base["Config"]["Cmd"], "Env": base["Config"].get("Env") or [],
                             "Labels": {"org.socker.test.made": token}},
                  "rootfs": {"type": "layers",
                             "diff_ids": [f"sha256:{hashlib.sha256(f.read_bytes()).hexdigest()}" for f in files]}}
        archive = Path(work) / "image.tar"
        with tarfile.open(archive, "w") as out:
            _add_file(out, "config.json", json.dumps(config).encode())
            _add_file(out, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": [tag],
                                                         "Layers": [f.name for f in files]}]).encode())
            for f in files:
                out.add(f, arcname=f.name)
        docker("load", "-i", str(archive))
    return tag, token


def _add_file(archive, path, data):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    with tempfile.TemporaryFile() as content:
        content.write(data)
        content.seek(0)
        archive.addfile(info, content)


@dataclass(frozen=True)
class Published:
    reference: str  # HOST/NAMESPACE/NAME:TAG
    digest: str  # of the manifest
    token: str  # the contents of UNIQUE_FILE in the image

    @property
    def name(self):
        """NAME, the last component of the repository."""
        return repository_of(self.reference).rsplit("/", 1)[1]

    @property
    def pinned(self):
        """HOST/NAMESPACE/NAME@DIGEST."""
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


def publish(name, tag="latest", payload_bytes=0, host=HOST, namespace=NAMESPACE, layers=1):
    """Make a new image (make_image) and push it as HOST/NAMESPACE/NAME:TAG; the engine keeps
    nothing of the new image, so that the next pull of it fetches all of it."""
    local, token = make_image(payload_bytes, layers)
    target = reference(name, tag, host, namespace)
    digest = push(local, target)
    docker("rmi", local)
    return Published(target, digest, token)


# ------------------------------------------------------------------ registries that misbehave

class _Listener:
    """A TCP server on the registry's loopback address and `port`, serving connections in threads."""

    def __init__(self, port):
        address = socket.getaddrinfo(SETTINGS["REGISTRY_HOST"], int(port), type=socket.SOCK_STREAM)[0]
        self._server = socket.socket(address[0], socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(address[4])
        self._server.listen(64)
        self._connections = []
        self._closing = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closing.is_set():
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self._connections.append(connection)
            threading.Thread(target=self.serve, args=(connection,), daemon=True).start()

    def serve(self, connection):
        raise NotImplementedError

    def close(self):
        self._closing.set()
        for end in (self._server, *self._connections):
            try:
                end.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked on it, as close() alone would not
            except OSError:
                pass
            end.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SilentServer(_Listener):
    """SILENT_HOST: a registry that answers the engine's first request (GET /v2/, which the
    engine gives up on by itself after 15 s) and then never says another word."""

    def __init__(self):
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(ETC / "tls" / "registry.crt", ETC / "tls" / "registry.key")
        super().__init__(SETTINGS["SILENT_PORT"])

    def serve(self, connection):
        try:
            connection = self._tls.wrap_socket(connection, server_side=True)
            self._connections.append(connection)
            received = b""
            while not self._closing.is_set():
                while b"\r\n\r\n" not in received:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    received += chunk
                head, _, received = received.partition(b"\r\n\r\n")
                if not head.startswith(b"GET /v2/ "):
                    break
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   b"Docker-Distribution-API-Version: registry/2.0\r\nContent-Length: 2\r\n\r\n{}")
        except (OSError, ssl.SSLError):
            return
        self._closing.wait()


class Throttle(_Listener):
    """SLOW_HOST: the listed registry, its answers slowed to `bytes_per_second`, so that a pull
    lasts long enough for a test to watch it."""

    def __init__(self, bytes_per_second):
        self.rate = bytes_per_second
        super().__init__(SETTINGS["SLOW_PORT"])

    def serve(self, client):
        upstream = socket.create_connection((SETTINGS["REGISTRY_HOST"], int(SETTINGS["REGISTRY_PORT"])))
        self._connections.append(upstream)
        threading.Thread(target=self._pump, args=(client, upstream, None), daemon=True).start()
        self._pump(upstream, client, self.rate)

    @staticmethod
    def _pump(source, sink, rate):
        started, sent = time.monotonic(), 0
        try:
            while chunk := source.recv(16384):
                sink.sendall(chunk)
                sent += len(chunk)
                if rate:
                    time.sleep(max(0.0, started + sent / rate - time.monotonic()))
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
