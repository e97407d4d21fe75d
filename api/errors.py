"""Every error is JSON: request hygiene checks and handlers for what views do not catch."""

from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Flask, Response, jsonify, request
from flask_smorest import abort
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import MethodNotAllowed, RequestEntityTooLarge

log = logging.getLogger("desks.api")

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """Build an error body shaped like flask-smorest's own: code, status, message."""
    response = jsonify(code=status, status=HTTPStatus(status).phrase, message=message)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def require_json_body() -> None:
    """Refuse a write whose body is not declared as JSON (415), before anything parses it."""
    if request.method not in _BODY_METHODS or not request.path.startswith("/api/"):
        return
    if request.routing_exception is not None:
        return  # no such route or method: let routing answer 404 or 405 first
    mimetype = request.mimetype
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        abort(
            415,
            message="Send the body as JSON with Content-Type: application/json "
            f"(got {mimetype or 'none'}).",
        )


# The query parameters each route takes (by endpoint, GET and HEAD only): any other is a 422.
QUERY_PARAMETERS = {
    "desks.DeskCollection": {"name", "page", "page_size", "as_of", "after"},
    "seed_desks": {"name", "page", "page_size", "as_of", "after"},
    "events.EventHistory": {"after", "limit"},
    "registry.Registry": {"as_of"},
    "desks.DeskTimeline": {"after", "limit"},
}
# Pages for people: links carry whatever query they like (?utm_source=...), which means nothing.
BROWSER_ENDPOINTS = {
    "dashboard.page",
    "static",
    "swagger_assets.asset",
    "api-docs.openapi_swagger_ui",
}


def refuse_unknown_query() -> None:
    """Refuse unknown, operator-shaped (`after[$gt]`) or repeated query parameters (422)."""
    if not request.args or request.routing_exception is not None:
        return
    if request.endpoint in BROWSER_ENDPOINTS:
        return
    allowed = QUERY_PARAMETERS.get(request.endpoint or "", set())
    if request.method not in {"GET", "HEAD"}:
        allowed = set()
    errors: dict[str, list[str]] = {}
    for name in request.args:
        if name not in allowed:
            errors[name[:40]] = ["Unknown parameter."]
        elif len(request.args.getlist(name)) > 1:
            errors[name] = ["Give this parameter once."]
    if errors:
        abort(422, errors={"query": errors}, message="Unknown or repeated query parameters.")


def register(app: Flask) -> None:
    """Attach request hygiene checks and JSON error handlers."""
    app.before_request(refuse_unknown_query)
    app.before_request(require_json_body)

    @app.errorhandler(MethodNotAllowed)
    def method_not_allowed(error: MethodNotAllowed) -> Response:
        # flask-smorest's JSON errors drop the Allow header that RFC 9110 requires on a 405.
        allowed = ", ".join(sorted(error.valid_methods or []))
        return error_response(405, f"Allowed methods: {allowed}.", {"Allow": allowed})

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Response:
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, f"The body is larger than {limit // 1024} KiB.")

    @app.errorhandler(ConnectionFailure)
    def store_unreachable(error: ConnectionFailure) -> Response:
        log.warning("store unreachable", extra={"error": type(error).__name__})
        return error_response(
            503, "The desk store is unreachable; try again shortly.", {"Retry-After": "5"}
        )

    # HTTPExceptions never reach this: flask-smorest's handler for them is more specific.
    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error", extra={"method": request.method, "path": request.path})
        return error_response(500, "Internal error; it has been logged.")
