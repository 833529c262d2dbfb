"""`Engine`: the engine's API as socker uses it, one method per request."""

import docker
import requests

from ..errors import Conflict, NotFound, TimedOut
from . import bodies, connection, streams, translate


class Engine:
    """Every method raises socker.errors.EngineError (or a subclass) on failure.

    `api` replaces the SDK client built from `socket_path`: the unit tests give one whose
    transport records each request and plays the engine's answers.
    """

    def __init__(self, socket_path, privileges, api=None):
        self.socket_path = socket_path
        self._privileges = privileges
        self._client = api

    def _api(self):
        if self._client is None:
            self._client = connection.api_client(self.socket_path, self._privileges)
        return self._client

    def _call(self, what, method, *args, **kwargs):
        api = self._api()
        try:
            return getattr(api, method)(*args, **kwargs)
        except (docker.errors.DockerException, requests.RequestException, OSError) as e:
            raise translate.request_error(e, what, self.socket_path) from e

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
        query, headers = bodies.pull(reference, credentials)
        api = self._api()
        try:
            response = api.post(f"{api.base_url}/v{connection.API_VERSION}/images/create", headers=headers,
                                stream=True, params=query, timeout=stall_timeout)
        except (requests.RequestException, OSError) as e:
            raise translate.stalled_or_failed(e, self.socket_path) from e
        yield from streams.pull_messages(response, self.socket_path)

    def create(self, spec, image, name, *, extra_mounts, cgroup_parent, chdir, terminal_size=None):
        """Create (not start) the container described by `spec` from the exact `image` (as inspected);
        returns its ID.

        The container starts in / with `chdir`, a program in the container, which sets the
        terminal's (rows, columns) `terminal_size` if given, enters spec.workdir as the caller
        and runs the image's entrypoint and the command: its first command sees the caller's
        terminal, which a resize request after the start would reach too late.
        """
        arguments = bodies.container(spec, image, name, extra_mounts=extra_mounts, cgroup_parent=cgroup_parent,
                                     chdir=chdir, terminal_size=terminal_size)
        return self._call("create container", "create_container", **arguments)["Id"]

    def attach(self, container_id, stdin):
        """Open the container's raw stdio stream; returns (socket, bytes already read past the headers)."""
        try:
            sock = connection.raw_socket(self.socket_path, self._privileges)
        except OSError as e:
            raise translate.unreachable(e, self.socket_path, what="attach") from e
        return sock, streams.attached(sock, bodies.attach(container_id, stdin))

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
