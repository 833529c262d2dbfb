"""A Docker SDK client whose transport is a fake engine: it records each request and plays answers.

The SDK itself builds every request, so what the tests pin is the very body
the real engine would receive.
"""

import json
import os
from contextlib import contextmanager

import docker
import requests
import requests.adapters


class FakeEngineAPI(requests.adapters.BaseAdapter):
    """Answers by (method, path suffix); unknown requests get 404. Records (method, path, body)."""

    def __init__(self, answers=None):
        super().__init__()
        self.answers = dict(answers or {})
        self.requests = []
        self.sent = []  # the whole requests, with their headers and query

    def send(self, request, **kwargs):
        path = request.path_url.split("?")[0]
        body = json.loads(request.body) if request.body else None
        self.requests.append((request.method, path, body))
        self.sent.append(request)
        for (method, suffix), answer in self.answers.items():
            if method == request.method and path.endswith(suffix):
                if isinstance(answer, Exception):
                    raise answer
                status, payload = answer
                return _response(request, status, payload)
        return _response(request, 404, {"message": f"no such object: {path}"})

    def close(self):
        pass

    def bodies(self, method, suffix):
        return [body for m, path, body in self.requests if m == method and path.endswith(suffix)]


def _response(request, status, payload):
    """`payload` as JSON, or as it is if it is bytes (a stream of JSON lines, say)."""
    response = requests.Response()
    response.status_code = status
    response._content = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response._content_consumed = True  # whole already: streaming reads it from _content
    response.headers["Content-Type"] = "application/json"
    response.request, response.url = request, request.url
    return response


def client(fake):
    """A real docker.APIClient that talks to `fake` instead of a socket."""
    api = docker.APIClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    api.mount("http+docker://", fake)
    return api


class FakePrivileges:
    """Counts how deep root is held; the tests ask it when root was held. Its root children are plain
    forks: socker as the tests run it is not setuid."""

    setuid = False

    def __init__(self):
        self.depth = 0

    @contextmanager
    def elevated(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    wholly_root = elevated

    def fork_root_child(self):
        return os.fork()
