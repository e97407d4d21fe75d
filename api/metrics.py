"""The API's metrics: requests by route template, method and status, and their latency."""

from __future__ import annotations

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram

from desks.metrics import exposition

API_REQUESTS = Counter(
    "desks_api_requests",
    "HTTP requests answered, by route template, method and status",
    ["method", "route", "status"],
)
API_LATENCY = Histogram(
    "desks_api_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# The methods HTTP defines (RFC 9110, PATCH from RFC 5789). gunicorn accepts any token as a
# method: each new one a caller invents would be a new series for good, so it counts as other.
METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


def observe(status: int, seconds: float) -> None:
    """Count the current request and its time (the request log's clock: one per request)."""
    # Every label from a closed set: the route's template (/api/desks/<desk_id>), never the
    # raw path; a known method or "other"; the status the app answered.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    method = request.method if request.method in METHODS else "other"
    API_REQUESTS.labels(method, route, str(status)).inc()
    API_LATENCY.labels(method, route).observe(seconds)


def register(app: Flask) -> None:
    """Serve /metrics (requests are counted by the request log, `observe`)."""

    def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, content_type=content_type)

    app.add_url_rule("/metrics", "metrics", metrics)
