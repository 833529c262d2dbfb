"""The Docker engine, reached only through the socket the admin configured.

This is the only module that imports `docker`, and the one place where the
SDK's errors become socker's typed ones (`NotFound`, `Conflict`, `TimedOut`,
else `EngineError`). The client is built with an explicit socket and API
version (no DOCKER_HOST, no ~/.docker/config.json, no credential helper, no
proxy settings). The socket is root's: root is held only while a connection
to it is made, never while the engine's answers are read and parsed.
"""

import contextlib
import json
import os
import socket
import stat
import urllib.parse

import docker
import docker.auth
import requests
from docker.transport import unixconn

from .errors import (Conflict, DigestMismatch, DiskFull, EngineError, NotFound, TimedOut, Unauthorized, Unreachable,
                     Untrusted)

API_VERSION = "1.41"  # Docker 20.10 and later
_REQUEST_TIMEOUT = 60


class Engine:
    """The engine's API as socker uses it. Every method raises EngineError (or a subclass) on failure.

    `api` replaces the SDK client built from `socket_path`: the unit tests give one whose
    transport records each request and plays the engine's answers.
    """

    def __init__(self, socket_path, privileges, api=None):
        self.socket_path = socket_path
        self._privileges = privileges
        self._client = api

    def _api(self):
        if self._client is None:
            with self._privileges.elevated():
                try:
                    st = os.stat(self.socket_path)
                except OSError as e:
                    raise EngineError(f"engine socket {self.socket_path} is missing: is the Docker engine running?") from e
            if not stat.S_ISSOCK(st.st_mode):
                raise EngineError(f"engine socket {self.socket_path} is not a socket")
            client = docker.APIClient(base_url=f"unix://{self.socket_path}", version=API_VERSION,
                                      timeout=_REQUEST_TIMEOUT)
            client.trust_env = False  # requests must not read *_PROXY, REQUESTS_CA_BUNDLE or ~/.netrc
            client.mount("http+docker://", _RootConnectingAdapter(self.socket_path, self._privileges,
                                                                  _REQUEST_TIMEOUT))
            self._client = client
        return self._client

    def _call(self, what, method, *args, **kwargs):
        api = self._api()
        try:
            return getattr(api, method)(*args, **kwargs)
        except docker.errors.APIError as e:
            kind = {404: NotFound, 409: Conflict}.get(e.status_code, EngineError)
            raise kind(e.explanation or str(e), what=what, status=e.status_code) from e
        except requests.exceptions.ReadTimeout as e:
            raise TimedOut("the Docker engine did not answer in time", what=what) from e
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            raise EngineError(f"cannot talk to the Docker engine at {self.socket_path}: {_reason(e)}", what=what) from e

    def version(self):
        return self._call("engine version", "version", api_version=False)

    def registry_config(self):
        """The engine's registry settings (RegistryConfig of GET /info): which registries it reaches
        without verified TLS."""
        return self._call("engine info", "info").get("RegistryConfig") or {}

    def image(self, reference):
        """The local image `reference` as the engine describes it, or None if this node does not have it."""
        try:
            return self._call(f"inspect image {reference}", "inspect_image", reference)
        except NotFound:
            return None

    def images(self):
        """Every image the node has, as the engine lists them (Id, RepoTags, RepoDigests)."""
        return self._call("list images", "images")

    def remove_image(self, name):
        """Remove the name `name` of an image, and the image with it if no other name holds it.
        Raises NotFound, or Conflict if a container uses it."""
        self._call(f"remove image {name}", "remove_image", name)

    def containers_using(self, image_id):
        """The IDs of the containers, running or not, made from the image `image_id`."""
        found = self._call("list containers", "containers", all=True, quiet=True, filters={"ancestor": image_id})
        return [container["Id"] for container in found]

    def pull(self, reference, credentials, stall_timeout):
        """Pull the imageref.Reference `reference` (by its digest if it has one) through the engine, with
        `credentials` (config.Credentials, or None) for its registry; yields the engine's progress
        messages as they come.

        Raises NotFound (the registry has no such image, tag or digest), Unauthorized,
        Unreachable, Untrusted, DigestMismatch, DiskFull, TimedOut (not a word from the engine for
        `stall_timeout` seconds) or EngineError. Closing the generator drops the connection,
        and with it the engine's pull.
        """
        headers = {}
        if credentials is not None:
            headers["X-Registry-Auth"] = docker.auth.encode_header({
                "username": credentials.username, "password": credentials.password,
                "serveraddress": reference.domain}).decode()
        api = self._api()
        try:
            response = api.post(f"{api.base_url}/v{API_VERSION}/images/create", headers=headers, stream=True,
                                params={"fromImage": reference.repository, "tag": reference.digest or reference.tag},
                                timeout=stall_timeout)
        except (requests.RequestException, OSError) as e:
            raise _stalled_or_failed(e, self.socket_path) from e
        with contextlib.closing(response):
            if response.status_code != 200:
                raise _pull_error(_explanation(response), response.status_code)
            try:
                for line in response.iter_lines():
                    message = json.loads(line) if line.strip() else {}
                    if "error" in message or "errorDetail" in message:
                        raise _pull_error((message.get("errorDetail") or {}).get("message") or message.get("error"))
                    if message:
                        yield message
            except (requests.RequestException, OSError) as e:
                raise _stalled_or_failed(e, self.socket_path) from e
            except ValueError as e:
                raise EngineError(f"the engine sent something that is not JSON: {e}", what="pull") from e

    def create(self, spec, image, name, *, extra_mounts, cgroup_parent, chdir, terminal_size=None):
        """Create (not start) the container described by `spec` from the exact `image` (as inspected);
        returns its ID.

        The container starts in / with `chdir`, a program in the container, which sets the
        terminal's (rows, columns) `terminal_size` if given, enters spec.workdir as the caller
        and runs the image's entrypoint and the command: its first command sees the caller's
        terminal, which a resize request after the start would reach too late.
        """
        config = image.get("Config") or {}
        mounts = [_bind(m.source, m.target, m.read_only) for m in (*spec.mounts, *extra_mounts)]
        host_config = {
            "Mounts": mounts,
            "Privileged": False,
            "CapDrop": ["ALL"],
            "CapAdd": [],
            "SecurityOpt": ["no-new-privileges"],
            "GroupAdd": [str(g) for g in spec.groups],
            # The device files of the container's GPUs, each alone: the engine's device filter for
            # the container (which on cgroup v2 replaces the job's) lets it use these and its defaults.
            "Devices": [{"PathOnHost": path, "PathInContainer": path, "CgroupPermissions": "rwm"}
                        for path in spec.devices],
            # The engine's own runtime, whatever the default: another (NVIDIA's) may add devices.
            "Runtime": "runc",
            "Init": True,
            "NetworkMode": spec.network,
            # Never the host's: its shared memory is every user's.
            "IpcMode": "private",
            "PidMode": "",
            "UTSMode": "",
            "UsernsMode": "",
            "CgroupParent": cgroup_parent,
            "PublishAllPorts": False,
            "RestartPolicy": {"Name": "no"},
            "AutoRemove": False,
            # Output reaches the caller through the attach stream; keep no copy on the node.
            "LogConfig": {"Type": "none", "Config": {}},
        }
        if spec.limits is not None:
            host_config.update(_limits(spec.limits))
        if spec.ulimits:
            host_config["Ulimits"] = [{"Name": name, "Soft": soft, "Hard": hard} for name, soft, hard in spec.ulimits]
        created = self._call(
            "create container", "create_container",
            image=image["Id"],
            # The image's entrypoint, after the helper; naming an entrypoint drops the image's
            # CMD, so it is given again when the caller names no command.
            entrypoint=[chdir, *(("--size", *map(str, terminal_size)) if terminal_size else ()), spec.workdir,
                        *(config.get("Entrypoint") or [])],
            command=list(spec.command) or config.get("Cmd") or [],
            user=f"{spec.uid}:{spec.gid}",
            environment=list(spec.env),
            working_dir="/",
            labels=dict(spec.labels),
            tty=spec.tty,
            stdin_open=spec.interactive,
            name=name,
            host_config=host_config,
            network_disabled=spec.network == "none",
            use_config_proxy=False,
        )
        return created["Id"]

    def attach(self, container_id, stdin):
        """Open the container's raw stdio stream; returns (socket, bytes already read past the headers)."""
        query = urllib.parse.urlencode({"stream": 1, "stdout": 1, "stderr": 1, "stdin": int(stdin)})
        request = (f"POST /v{API_VERSION}/containers/{container_id}/attach?{query} HTTP/1.1\r\n"
                   "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self._privileges.elevated():
                sock.connect(self.socket_path)
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk or len(head) > 65536:
                    raise EngineError("the engine closed the stream", what="attach")
                head += chunk
        except OSError as e:
            sock.close()
            raise EngineError(_reason(e), what="attach") from e
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status_line.split(" ")[1:2] not in (["101"], ["200"]):
            sock.close()
            raise EngineError(f"the engine answered {status_line!r}", what="attach")
        return sock, rest

    def start(self, container_id):
        self._call("start container", "start", container_id)

    def kill(self, container_id, signal_name):
        """Raises Conflict if the container is not running."""
        self._call(f"send {signal_name}", "kill", container_id, signal=signal_name)

    def resize(self, container_id, height, width):
        self._call("resize terminal", "resize", container_id, height=height, width=width)

    def wait(self, container_id, timeout):
        """The container's exit status, or None if it is still running after `timeout` seconds."""
        try:
            return self._call("wait for container", "wait", container_id, timeout=timeout)["StatusCode"]
        except TimedOut:
            return None

    def state(self, container_id):
        return self._call("inspect container", "inspect_container", container_id)["State"]

    def remove(self, reference):
        """Remove the container (by ID or name) and its anonymous volumes, killing it first.

        Returns False if it did not exist.
        """
        try:
            # v: with its anonymous volumes (an image's VOLUME), which would otherwise pile up.
            self._call("remove container", "remove_container", reference, force=True, v=True)
        except NotFound:
            return False
        except Conflict:
            pass  # removal already in progress
        return True


def _limits(limits):
    """The container's own cgroup limits: each that `limits` sets (None leaves it to the parent's)."""
    found = {}
    if limits.memory_bytes is not None:
        found.update(Memory=limits.memory_bytes, MemorySwap=limits.memory_swap_bytes)
    if limits.cpus is not None:
        found["NanoCpus"] = int(limits.cpus * 1e9)
    if limits.pids is not None:
        found["PidsLimit"] = limits.pids
    return found


def _bind(source, target, read_only):
    # The Mounts API refuses a missing source instead of creating it as root, as Binds would.
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only,
            "BindOptions": {"Propagation": "rprivate"}}


# What the engine says when a pull fails, by kind; the first kind that matches wins.
_PULL_FAILURES = (
    (DiskFull, ("no space left on device",)),
    (DigestMismatch, ("verification failed", "digest mismatch", "did not match")),
    (Untrusted, ("x509:", "certificate")),
    (Unauthorized, ("unauthorized", "no basic auth credentials", "authentication required", "denied")),
    (NotFound, ("manifest unknown", "not found", "name unknown", "does not exist")),
    (Unreachable, ("connection refused", "no such host", "i/o timeout", "handshake timeout", "Client.Timeout",
                   "network is unreachable", "no route to host", "connection reset", "server misbehaving")),
)


def _pull_error(message, status=None):
    message = str(message or "the engine gave no reason")
    kind = NotFound if status == 404 else next(
        (kind for kind, signs in _PULL_FAILURES if any(sign in message for sign in signs)), EngineError)
    return kind(message, status=status)


def _stalled_or_failed(error, socket_path):
    if isinstance(error, requests.exceptions.Timeout) or "timed out" in _reason(error):
        return TimedOut("no word from the engine in the time given")
    return EngineError(f"cannot talk to the Docker engine at {socket_path}: {_reason(error)}")


def _explanation(response):
    try:
        return response.json().get("message")
    except ValueError:
        return response.text.strip()


def _reason(error):
    """The innermost, most specific reason in an exception chain."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return str(error) or type(error).__name__


class _RootConnection(unixconn.UnixHTTPConnection):
    """A connection to the engine's socket that holds root for connect() only."""

    def __init__(self, privileges, *args):
        super().__init__(*args)
        self._privileges = privileges

    def connect(self):
        with self._privileges.elevated():
            super().connect()


class _RootConnectingPool(unixconn.UnixHTTPConnectionPool):
    def __init__(self, privileges, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._privileges = privileges

    def _new_conn(self):
        return _RootConnection(self._privileges, self.base_url, self.socket_path, self.timeout)


class _RootConnectingAdapter(unixconn.UnixHTTPAdapter):
    """The SDK's transport for unix sockets, with connections that connect as root."""

    def __init__(self, socket_path, privileges, timeout):
        self._privileges = privileges
        super().__init__(socket_path, timeout)

    def get_connection(self, url, proxies=None):
        with self.pools.lock:
            pool = self.pools.get(url)
            if pool is None:
                pool = _RootConnectingPool(self._privileges, url, self.socket_path, self.timeout,
                                           maxsize=self.max_pool_size)
                self.pools[url] = pool
        return pool
