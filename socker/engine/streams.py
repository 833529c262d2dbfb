"""The engine's two long answers: a container's stdio stream (attach) and a pull's progress."""

import contextlib
import json

import requests

from ..errors import EngineError
from . import translate

_MOST_HEADER = 65536


def attached(sock, request):
    """Send the attach `request` on `sock` and read the engine's answer up to the stream; returns the
    bytes already read past the headers. Raises EngineError (what="attach"); closes `sock` then."""
    try:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk or len(head) > _MOST_HEADER:
                raise EngineError("the engine closed the stream", what="attach")
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if status_line.split(" ")[1:2] not in (["101"], ["200"]):
            raise EngineError(f"the engine answered {status_line!r}", what="attach")
        return rest
    except OSError as e:
        sock.close()
        raise EngineError(translate.reason(e), what="attach") from e
    except BaseException:
        sock.close()
        raise


def pull_messages(response, socket_path):
    """The engine's progress messages of the streamed pull `response`, as they come; raises the
    typed error of the first failure it reports. Closes the response, and with it the pull."""
    with contextlib.closing(response):
        if response.status_code != 200:
            raise translate.pull_error(_explanation(response), response.status_code)
        try:
            for line in response.iter_lines():
                message = json.loads(line) if line.strip() else {}
                if "error" in message or "errorDetail" in message:
                    raise translate.pull_error((message.get("errorDetail") or {}).get("message") or message.get("error"))
                if message:
                    yield message
        except (requests.RequestException, OSError) as e:
            raise translate.stalled_or_failed(e, socket_path) from e
        except ValueError as e:
            raise EngineError(f"the engine sent something that is not JSON: {e}", what="pull") from e


def _explanation(response):
    try:
        return response.json().get("message")
    except ValueError:
        return response.text.strip()
