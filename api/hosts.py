"""Refuse a request whose Host the API does not answer to (400), before any route runs."""

from __future__ import annotations

from collections.abc import Iterable

from flask import Flask, request
from flask_smorest import abort

from desks.hosts import PROBES, host_allowed


def register(app: Flask, hosts: Iterable[str]) -> None:
    """Answer only requests for one of `hosts` (DESKS_ALLOWED_HOSTS), and probes for any."""
    allowed = tuple(hosts)

    @app.before_request
    def refuse_other_hosts() -> None:
        if request.path in PROBES:
            return
        host = request.headers.get("Host", "")
        if not host_allowed(host, allowed):
            abort(
                400,
                message="This server does not answer to that host: add it to "
                "DESKS_ALLOWED_HOSTS if it is one of its names.",
                errors={"headers": {"Host": ["Not an allowed host."]}},
            )
