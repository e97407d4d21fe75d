"""The broadcaster's HTTP probes: `/healthz`, `/readyz` (saying why not), `/metrics`."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

from desks.metrics import exposition


def answer_probe(
    connection: ServerConnection, path: str, not_ready: Callable[[], str | None]
) -> Response:
    """Answer a probe (`desks.hosts.PROBES`); `not_ready` says why clients cannot be served."""
    if path == "/healthz":
        return connection.respond(HTTPStatus.OK, "ok\n")
    if path == "/readyz":
        why = not_ready()
        if why is None:
            return connection.respond(HTTPStatus.OK, "ready\n")
        return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}\n")
    text, content_type = exposition()
    headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(text)))])
    return Response(HTTPStatus.OK, "OK", headers, text)
