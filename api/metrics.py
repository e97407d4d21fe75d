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


def observe(status: int, seconds: float) -> None:
    """Count the current request and its time (the request log's clock: one per request)."""
    # The route's template (/api/desks/<desk_id>), never the raw path: bounded labels.
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    API_REQUESTS.labels(request.method, route, str(status)).inc()
    API_LATENCY.labels(request.method, route).observe(seconds)


def register(app: Flask) -> None:
    """Serve /metrics (requests are counted by the request log, `observe`)."""

    def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, content_type=content_type)

    app.add_url_rule("/metrics", "metrics", metrics)
