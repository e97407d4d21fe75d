"""Serve the API over HTTP: gunicorn, or an in-process threaded server for a private store.

`desks api` and `desks up` run gunicorn with the same options (`gunicorn_options`); the
in-process server exists for an in-memory store private to one process (the tests').
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http import HTTPStatus
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers import gthread
from gunicorn.workers.gthread import ThreadWorker
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server, select_address_family

# What one request may send before the app sees it: gunicorn refuses longer request lines
# (414), more header fields or longer ones (431), each with a JSON body (JsonErrorsWorker).
LIMIT_REQUEST_LINE = 8190
LIMIT_REQUEST_FIELDS = 100
LIMIT_REQUEST_FIELD_SIZE = 8190
# A connection idle this long (no request yet, or kept alive between requests) is closed.
IDLE_TIMEOUT_S = 5
# A request must have arrived whole (line, headers and body) this long after it began.
REQUEST_READ_TIMEOUT_S = 10


def gunicorn_options(
    bind: str,
    workers: int,
    threads: int,
    control_socket: str | None = None,
    log_level: str = "INFO",
) -> dict[str, Any]:
    """Return the gunicorn settings of `desks api` and `desks up`: one production server."""
    return {
        # gunicorn opens a control socket by default at one path per user (~/.gunicorn/
        # gunicorn.ctl), shared by every instance: only where an operator asks for one.
        "control_socket_disable": control_socket is None,
        **({"control_socket": control_socket} if control_socket else {}),
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "api.server.JsonErrorsWorker",
        # Connections wait in the poller, not in threads: idle ones cost no thread, and
        # each worker holds at most this many (the rest wait in the bounded accept backlog).
        "worker_connections": 1000,
        "backlog": 1024,
        "keepalive": IDLE_TIMEOUT_S,
        "timeout": 30,  # a worker stuck this long is killed and replaced
        "graceful_timeout": 5,
        "limit_request_line": LIMIT_REQUEST_LINE,
        "limit_request_fields": LIMIT_REQUEST_FIELDS,
        "limit_request_field_size": LIMIT_REQUEST_FIELD_SIZE,
        "accesslog": None,  # the app logs one structured line a request
        "logger_class": "api.server.NoAccessLogger",
        "logconfig_dict": logconfig(log_level),
    }


def logconfig(level: str) -> dict[str, Any]:
    """Return gunicorn's logging of the workers: DESKS_LOG_LEVEL, in our format.

    gunicorn's own lines take the same escaped format as everything else: they quote request
    lines and headers, which must not reach the log raw. The level applies to the app's lines
    too: gunicorn configures logging in each worker after `desks api` did in its parent.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"logfmt": {"()": "desks.logs.formatter"}},  # DESKS_LOG_FORMAT's choice
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "logfmt",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


class NoAccessLogger(glogging.Logger):  # type: ignore[misc]
    """gunicorn's logger without its access log: the app logs one structured line a request.

    With a `logconfig_dict` gunicorn builds every request's access-log fields (headers,
    environ) even when `gunicorn.access` drops the line: 3% of a POST's CPU, for nothing.
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        """Log nothing."""


def write_json_error(sock: Any, status_int: int, reason: str, message: str) -> None:
    """Write gunicorn's own error responses (400, 414, 431, ...) as JSON like the app's."""
    try:
        phrase = HTTPStatus(status_int).phrase
    except ValueError:
        phrase = reason
    body = json.dumps({"code": status_int, "status": phrase, "message": message or reason})
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, (head + body).encode("latin-1", "replace"))


class JsonErrorsWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker, with JSON errors and a deadline for reading each request.

    gunicorn waits for a connection's first bytes in its poller, but once a request has begun
    a thread reads it with no time limit: a client sending a byte now and then (slowloris)
    would hold that thread forever, and a few would stop the API. Past REQUEST_READ_TIMEOUT_S
    the connection's read side is shut: the blocked read ends, the thread moves on. A response
    being written is unaffected.
    """

    def init_process(self) -> None:
        """Swap in the JSON error writer and start the watchdog, in this worker process only."""
        # gunicorn offers no hook for its error bodies; Worker.handle_error calls this.
        gunicorn_util.write_error = write_json_error
        self._deadlines: dict[socket.socket, float] = {}
        self._deadlines_lock = threading.Lock()
        threading.Thread(target=self._watchdog, name="request-deadlines", daemon=True).start()
        super().init_process()

    def handle(self, conn: Any) -> Any:
        """Handle one request on `conn` under the read deadline."""
        if not conn.initialized and not conn.data_ready and not conn.wait_for_data(0):
            # A new connection with nothing to read yet waits in the poller, not in a thread.
            # gunicorn would hold a thread for up to 5 s for its first bytes: a burst of
            # connections opened ahead of their requests (browsers, pools) then holds every
            # thread while requests that did arrive queue behind them (bench/http_load: the
            # first request on such connections took 300-800 ms even with a 50 ms wait).
            return gthread._DEFER
        sock = conn.sock
        with self._deadlines_lock:
            self._deadlines[sock] = time.monotonic() + REQUEST_READ_TIMEOUT_S
        try:
            return super().handle(conn)
        finally:
            with self._deadlines_lock:
                self._deadlines.pop(sock, None)

    def _watchdog(self) -> None:
        while True:
            time.sleep(0.5)
            now = time.monotonic()
            with self._deadlines_lock:
                late = [sock for sock, deadline in self._deadlines.items() if deadline < now]
                for sock in late:
                    del self._deadlines[sock]
            for sock in late:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RD)


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
