"""The Docker engine, reached only through the socket the admin configured.

This is the only module that imports `docker`. The client is built with an
explicit socket and API version (no DOCKER_HOST, no ~/.docker/config.json,
no credential helper, no proxy settings), and root is held only while a
request is on the wire: the socket is root's.
"""

import os
import socket
import stat
import urllib.parse

import docker
import requests

from .errors import EngineError, PolicyError

API_VERSION = "1.41"  # Docker 20.10 and later
_REQUEST_TIMEOUT = 60


class Engine:
    def __init__(self, socket_path, privileges):
        self._socket_path = socket_path
        self._privileges = privileges
        self._client = None

    def _api(self):
        if self._client is None:
            with self._privileges.elevated():
                try:
                    st = os.stat(self._socket_path)
                except OSError as e:
                    raise EngineError(f"engine socket {self._socket_path} is missing: is the Docker engine running?") from e
            if not stat.S_ISSOCK(st.st_mode):
                raise EngineError(f"engine socket {self._socket_path} is not a socket")
            client = docker.APIClient(base_url=f"unix://{self._socket_path}", version=API_VERSION,
                                      timeout=_REQUEST_TIMEOUT)
            client.trust_env = False  # requests must not read *_PROXY, REQUESTS_CA_BUNDLE or ~/.netrc
            self._client = client
        return self._client

    def _call(self, what, method, *args, **kwargs):
        api = self._api()
        with self._privileges.elevated():
            try:
                return getattr(api, method)(*args, **kwargs)
            except docker.errors.APIError as e:
                raise EngineError(f"{what}: {e.explanation or e}") from e
            except (docker.errors.DockerException, requests.RequestException, OSError) as e:
                raise EngineError(f"{what}: cannot talk to the Docker engine at {self._socket_path}: {_reason(e)}") from e

    def version(self):
        return self._call("engine version", "version", api_version=False)

    def image(self, reference):
        """The local image `reference` as the engine describes it, or None if this node does not have it."""
        try:
            return self._call(f"inspect image {reference}", "inspect_image", reference)
        except EngineError as e:
            if isinstance(e.__cause__, docker.errors.NotFound):
                return None
            raise

    def require_image(self, reference, shown):
        image = self.image(reference)
        if image is None:
            raise PolicyError(f"image {shown} is allowed but not present on this node; ask your administrator to pull it")
        return image

    def create(self, spec, image, name, extra_mounts, cgroup_parent, chdir):
        """Create (not start) the container described by `spec` from the exact `image` (as inspected).

        The container starts in / with `chdir`, a program in the container, which enters
        spec.workdir as the caller and runs the image's entrypoint and the command.
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
            "Devices": [],
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
            host_config.update({
                "Memory": spec.limits.memory_bytes,
                "MemorySwap": spec.limits.memory_bytes,  # no swap beyond the limit
                "NanoCpus": int(spec.limits.cpus * 1e9),
                "PidsLimit": spec.limits.pids,
            })
        created = self._call(
            "create container", "create_container",
            image=image["Id"],
            # The image's entrypoint, after the helper; naming an entrypoint drops the image's
            # CMD, so it is given again when the caller names no command.
            entrypoint=[chdir, spec.workdir, *(config.get("Entrypoint") or [])],
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
                sock.connect(self._socket_path)
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk or len(head) > 65536:
                    raise EngineError("attach: the engine closed the stream")
                head += chunk
        except OSError as e:
            sock.close()
            raise EngineError(f"attach: {_reason(e)}") from e
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status_line.split(" ")[1:2] not in (["101"], ["200"]):
            sock.close()
            raise EngineError(f"attach: the engine answered {status_line!r}")
        return sock, rest

    def start(self, container_id):
        self._call("start container", "start", container_id)

    def kill(self, container_id, signal_name):
        self._call(f"send {signal_name}", "kill", container_id, signal=signal_name)

    def resize(self, container_id, height, width):
        self._call("resize terminal", "resize", container_id, height=height, width=width)

    def wait(self, container_id, timeout):
        """The container's exit status, or None if it is still running after `timeout` seconds."""
        api = self._api()
        with self._privileges.elevated():
            try:
                return api.wait(container_id, timeout=timeout)["StatusCode"]
            except requests.exceptions.ReadTimeout:
                return None
            except (docker.errors.DockerException, requests.RequestException, OSError) as e:
                raise EngineError(f"wait for container: {_reason(e)}") from e

    def state(self, container_id):
        return self._call("inspect container", "inspect_container", container_id)["State"]

    def remove(self, reference):
        """Remove the container (by ID or name) and its anonymous volumes, killing it first.

        Returns False if it did not exist.
        """
        try:
            # v: with its anonymous volumes (an image's VOLUME), which would otherwise pile up.
            self._call("remove container", "remove_container", reference, force=True, v=True)
        except EngineError as e:
            if isinstance(e.__cause__, docker.errors.NotFound):
                return False
            if isinstance(e.__cause__, docker.errors.APIError) and e.__cause__.status_code == 409:
                return True  # removal already in progress
            raise
        return True


def _bind(source, target, read_only):
    # The Mounts API refuses a missing source instead of creating it as root, as Binds would.
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": read_only,
            "BindOptions": {"Propagation": "rprivate"}}


def _reason(error):
    """The innermost, most specific reason in an exception chain."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__
    return str(error) or type(error).__name__
