"""Serve the API over HTTP: gunicorn in production, an in-process threaded server for `desks up`."""

from __future__ import annotations

import socket
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server, select_address_family


class QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug's handler without its access log: the app logs one structured line a request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


class InProcessServer:
    """A threaded WSGI server in a background thread, sharing this process's embedded store."""

    def __init__(self, app: Flask, host: str, port: int) -> None:
        """Bind host:port now, raising OSError if it is taken (werkzeug alone would exit)."""
        family = select_address_family(host, port)
        listener = socket.create_server((host, port), family=family)
        try:
            self._server: BaseWSGIServer = make_server(
                host,
                port,
                app,
                threaded=True,
                request_handler=QuietRequestHandler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # the server holds its own duplicate of the socket
        self._thread = threading.Thread(target=self._server.serve_forever, name="api", daemon=True)

    @property
    def port(self) -> int:
        """Return the bound port (useful when asked for port 0)."""
        return int(self._server.port)

    def start(self) -> None:
        """Start answering requests."""
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting requests and wait for the serving thread."""
        if self._thread.is_alive():  # shutdown() would wait forever for a loop never started
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn running `create_app()` in each worker (clients are made after the fork)."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options to gunicorn's config."""
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Build the app inside the worker."""
        from api import create_app

        return create_app()
