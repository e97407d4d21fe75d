"""Liveness and readiness probes."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint, abort
from pymongo.errors import PyMongoError

from desks.store import Store

blp = Blueprint("health", __name__, description="Probes for orchestrators.")


@blp.route("/healthz")
@blp.response(200)
def healthz() -> dict[str, str]:
    """Answer while the process is alive."""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200)
@blp.alt_response(503, description="The store is unreachable")
def readyz() -> dict[str, str]:
    """Answer 200 only while the store answers a ping."""
    store: Store = current_app.extensions["desks.store"]
    try:
        store.ping()
    except PyMongoError as error:
        abort(503, message=f"Store unreachable: {type(error).__name__}")
    return {"status": "ready", "store": store.kind}
