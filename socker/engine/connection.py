"""The connection to the engine's socket, which is root's: root is held only while a connection is
made, never while the engine's answers are read and parsed.

The SDK's client is built with an explicit socket and API version (no DOCKER_HOST, no
~/.docker/config.json, no credential helper, no proxy settings).
"""

import os
import socket
import stat

import docker
from docker.transport import unixconn

from ..errors import EngineError

API_VERSION = "1.41"  # Docker 20.10 and later
REQUEST_TIMEOUT = 60


def api_client(socket_path, privileges):
    """The SDK's low-level client for the engine at `socket_path`, connecting as root."""
    with privileges.elevated():
        try:
            st = os.stat(socket_path)
        except OSError as e:
            raise EngineError(f"engine socket {socket_path} is missing: is the Docker engine running?") from e
    if not stat.S_ISSOCK(st.st_mode):
        raise EngineError(f"engine socket {socket_path} is not a socket")
    client = docker.APIClient(base_url=f"unix://{socket_path}", version=API_VERSION, timeout=REQUEST_TIMEOUT)
    client.trust_env = False  # requests must not read *_PROXY, REQUESTS_CA_BUNDLE or ~/.netrc
    client.mount("http+docker://", _RootConnectingAdapter(socket_path, privileges, REQUEST_TIMEOUT))
    return client


def raw_socket(socket_path, privileges):
    """A plain stream socket connected (as root) to the engine, for a request the SDK cannot make
    without threads of its own (attach)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with privileges.elevated():
            sock.connect(socket_path)
    except BaseException:
        sock.close()
        raise
    return sock


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
