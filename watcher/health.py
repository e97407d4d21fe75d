"""The watcher process's probes: `/healthz` (alive) and `/readyz` (events flowing, or a ready
standby)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pymongo.errors import PyMongoError

from desks.event_log import EventLog
from desks.metrics import exposition
from watcher.publisher import Publisher
from watcher.stream import Watcher


def readiness(
    watcher: Watcher, publishers: Sequence[Publisher], events: EventLog, max_lag: int
) -> tuple[int, dict[str, object]]:
    """Return (HTTP status, body): 200 while events flow to a broadcaster or while standing by.

    An active watcher whose publishers reach no broadcaster, or lag the log by more than
    `max_lag` events, logs changes that nobody is told about: not ready, and the body says why.
    """
    problems: list[str] = []
    lags: dict[str, int | None] = {p.url: None for p in publishers}
    if not watcher.ready:
        problems.append(f"watcher is {watcher.role}")
    elif watcher.leading and publishers:
        try:
            head = events.head()
        except PyMongoError as error:
            head = None
            problems.append(f"event log unreadable: {type(error).__name__}")
        for publisher in publishers:
            position = publisher.position
            if head is not None and position is not None:
                lags[publisher.url] = max(0, head - position)
        if not any(lag is not None for lag in lags.values()) and head is not None:
            problems.append("publisher reaches no broadcaster")
        for url, lag in lags.items():
            if lag is not None and lag > max_lag:
                problems.append(f"publisher to {url} lags {lag} events (limit {max_lag})")
    body: dict[str, object] = {
        "status": "unavailable" if problems else "ready",
        "role": watcher.role,
        "broadcasters": {
            url: {"connected": lag is not None, "lag": lag} for url, lag in lags.items()
        },
        "problems": problems,
    }
    return (503 if problems else 200), body


class HealthServer:
    """A tiny HTTP server in a background thread answering the two probes."""

    def __init__(
        self,
        host: str,
        port: int,
        watcher: Watcher,
        publishers: Sequence[Publisher],
        events: EventLog,
        max_lag: int,
    ) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body: dict[str, object]
                if self.path == "/metrics":
                    text, content_type = exposition()
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                    return
                if self.path == "/healthz":
                    status, body = 200, {"status": "alive"}
                elif self.path == "/readyz":
                    status, body = readiness(watcher, publishers, events, max_lag)
                else:
                    status, body = 404, {"status": "unknown path"}
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                """Log nothing: probes every few seconds would drown the watcher's own lines."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        """Return the bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start answering probes."""
        self._thread.start()

    def stop(self) -> None:
        """Stop answering probes."""
        self._server.shutdown()
        self._server.server_close()
