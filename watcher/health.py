"""The watcher process's probes: `/healthz` (alive) and `/readyz` (events flowing, or a ready
standby)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from desks.metrics import exposition
from watcher.stream import Watcher


def readiness(watcher: Watcher) -> tuple[int, dict[str, object]]:
    """Return (HTTP status, body): 200 while changes are logged, or while standing by ready
    to take over; 503 otherwise, and the body says why."""
    problems = [] if watcher.ready else [f"watcher is {watcher.role}"]
    body: dict[str, object] = {
        "status": "unavailable" if problems else "ready",
        "role": watcher.role,
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
                    status, body = readiness(watcher)
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
