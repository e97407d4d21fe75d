"""CORS for the dashboard origins an operator names (DESKS_CORS_ORIGINS); none by default."""

from __future__ import annotations

from collections.abc import Sequence

from flask import Flask
from flask_cors import CORS

# What a cross-origin client must read and send to use the API as the dashboard does.
EXPOSED = [
    "ETag",
    "Location",
    "X-Event-Seq",
    "X-Pagination",
    "X-Total-Count",
    "X-Request-Id",
    "Idempotent-Replayed",
    "Link",
    "Retry-After",
]
ALLOWED = [
    "Authorization",
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "Idempotency-Key",
    "X-Request-Id",
]


def register(app: Flask, origins: Sequence[str]) -> None:
    """Answer preflights and add CORS headers on /api/ for `origins` only (none: no CORS)."""
    if not origins:
        return
    CORS(
        app,
        resources={r"/api/*": {"origins": list(origins)}},
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=ALLOWED,
        expose_headers=EXPOSED,
        supports_credentials=False,  # tokens travel in Authorization, never in cookies
        max_age=600,
        vary_header=True,
    )
