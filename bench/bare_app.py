"""The reference for the write path: gunicorn + Flask doing one SQLite INSERT per POST.

What `desks up`'s API is measured against (`python -m bench.write_path`): the same gunicorn
worker class family (gthread), workers and threads, a file in WAL mode with
`synchronous=FULL`, one INSERT and COMMIT per `POST /api/desks`, a JSON answer, and nothing
else: no validation, no change stream, no event log, no idempotency, no metrics.

    python -m bench.bare_app --port 8001 --db /tmp/bare.sqlite3 --workers 2 --threads 4
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
import time
import uuid
from typing import Any

from flask import Flask, Response, request
from gunicorn.app.base import BaseApplication

_local = threading.local()


def prepare(path: str) -> None:
    """Create the file in WAL mode and its table."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS desks (id TEXT PRIMARY KEY, body TEXT)")
    db.close()


def create_app(path: str) -> Flask:
    """Return the app: POST /api/desks inserts a row, GET /healthz answers 200."""
    app = Flask(__name__)

    def connection() -> sqlite3.Connection:
        if not hasattr(_local, "connection"):
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            _local.connection = db
        return _local.connection  # type: ignore[no-any-return]

    @app.post("/api/desks")
    def create() -> Response:
        fields: dict[str, Any] = request.get_json()
        desk = {"id": uuid.uuid4().hex, **fields, "version": 1, "created_at": time.time()}
        db = connection()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO desks VALUES (?, ?)", (desk["id"], json.dumps(desk)))
        db.execute("COMMIT")
        return Response(json.dumps(desk), 201, mimetype="application/json")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("{}", 200, mimetype="application/json")

    return app


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any], path: str) -> None:
        self._options, self._path = options, path
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self._path)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    prepare(args.db)  # before the workers would race to
    options = {
        "bind": f"127.0.0.1:{args.port}",
        "workers": args.workers,
        "threads": args.threads,
        "worker_class": "gthread",
        "keepalive": 5,
        "accesslog": None,
        "loglevel": "warning",
    }
    _Gunicorn(options, args.db).run()


if __name__ == "__main__":
    main()
