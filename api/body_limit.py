"""One limit for every request body, whether its length is declared or it comes in chunks."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from typing import Any

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class BodyLimit:
    """WSGI middleware: a chunked body over `max_bytes` is answered 413 before the app runs.

    A declared Content-Length over the limit is Flask's to refuse (MAX_CONTENT_LENGTH). A body
    without one (Transfer-Encoding: chunked) is read here, up to one byte past the limit: over
    it, 413; within it, the app gets it with its length declared, like any other body. Werkzeug
    alone would cut such a body at the limit and hand the app the truncated start.
    """

    def __init__(self, app: WsgiApp, max_bytes: int) -> None:
        self._app = app
        self._max_bytes = max_bytes

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self._app(environ, start_response)  # no body, or a declared length
        body = environ["wsgi.input"].read(self._max_bytes + 1)
        if len(body) > self._max_bytes:
            message = f"The body is larger than {self._max_bytes // 1024} KiB."
            payload = json.dumps({"code": 413, "status": "Payload Too Large", "message": message})
            start_response(
                "413 Payload Too Large",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    ("Connection", "close"),  # the rest of the body is left unread
                ],
            )
            return [payload.encode()]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        environ.pop("wsgi.input_terminated", None)
        del environ["HTTP_TRANSFER_ENCODING"]  # Werkzeug ignores lengths next to it
        return self._app(environ, start_response)
