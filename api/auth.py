"""Bearer-token checks for the REST API: writes need desks:write, reads desks:read.

Health probes, the dashboard's files and the API's documentation stay open: they hold no
desk data (the dashboard itself asks for a token when the API answers 401).
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from flask_smorest import Api

from api.errors import BROWSER_ENDPOINTS, error_response
from desks.auth import READ, WRITE, AuthError, ScopeError, Verifier, bearer

# The pages for people (the dashboard, Swagger UI and their files), probes, the spec, metrics.
OPEN_ENDPOINTS = BROWSER_ENDPOINTS | {
    "health.healthz",
    "health.readyz",
    "api-docs.openapi_json",
    "metrics",
}
REALM = 'Bearer realm="desks"'


def register(app: Flask, api: Api, verifier: Verifier) -> None:
    """Check every request's token before its view runs."""
    app.extensions["desks.verifier"] = verifier
    app.before_request(require_token)
    if verifier.enabled:
        # Swagger UI's "Authorize" button and clients generated from the spec see the scheme.
        api.spec.components.security_scheme(
            "bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        )
        api.spec.options["security"] = [{"bearer": []}]


def require_token() -> Response | None:
    """Answer 401 (no usable token) or 403 (no such scope) before the view; None to go on."""
    verifier: Verifier = current_app.extensions["desks.verifier"]
    if not verifier.enabled or request.method == "OPTIONS":
        return None  # a CORS preflight carries no credentials, by the standard
    if request.endpoint in OPEN_ENDPOINTS or request.routing_exception is not None:
        return None
    scope = READ if request.method in {"GET", "HEAD"} else WRITE
    try:
        g.grant = verifier.check(bearer(request.headers.get("Authorization")), scope)
    except AuthError as error:
        # RFC 6750 3.1: no error code when no token was sent at all.
        challenge = REALM if "required" in str(error) else f'{REALM}, error="invalid_token"'
        return error_response(401, str(error), {"WWW-Authenticate": challenge})
    except ScopeError as error:
        challenge = f'{REALM}, error="insufficient_scope", scope="{scope}"'
        return error_response(403, str(error), {"WWW-Authenticate": challenge})
    return None
