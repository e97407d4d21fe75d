"""The desks REST API: a Flask app that only ever writes to the store."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, g, request
from flask_smorest import Api

from api import (
    auth,
    cors,
    dashboard,
    desks,
    errors,
    events,
    health,
    hosts,
    metrics,
    registry,
    swagger_assets,
)
from api.body_limit import BodyLimit
from api.idempotency import IdempotencyKeys
from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import Store, open_store

MAX_BODY_BYTES = 64 * 1024

log = logging.getLogger("desks.api")


def create_app(
    config: Mapping[str, Any] | None = None,
    store: Store | None = None,
    settings: Settings | None = None,
) -> Flask:
    """Build the API app on `store` (default: the one `settings`, else the environment, names)."""
    app = Flask(__name__)
    app.config.update(
        API_TITLE="desks",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=swagger_assets.URL,  # served here: no CDN
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
    )
    settings = settings or Settings.from_env()
    app.config.update(
        DESKS_BROADCASTER_PORT=settings.broadcaster_port,
        DESKS_PUBLIC_BROADCASTER_URL=settings.public_broadcaster_url,
    )
    app.config.update(config or {})
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    store = store or open_store(settings)
    app.extensions["desks.store"] = store
    app.extensions["desks.idempotency"] = IdempotencyKeys(
        store.database, app.config.get("IDEMPOTENCY_TTL_SECONDS", settings.idempotency_ttl_seconds)
    )
    app.extensions["desks.repository"] = DeskRepository(store.desks)
    app.extensions["desks.events"] = EventLog(store.database)

    api = Api(app)
    api.register_blueprint(desks.blp)
    api.register_blueprint(events.blp)
    api.register_blueprint(registry.blp)
    api.register_blueprint(health.blp)
    # marshmallow cannot say "at least one field"; the schema check in DeskPatchSchema does.
    api.spec.components.schemas["DeskPatch"]["minProperties"] = 1
    app.register_blueprint(dashboard.blp)
    app.register_blueprint(swagger_assets.blp)
    _add_seed_routes(app)
    # First: a request the later checks refuse (401, 422...) is timed, counted and logged too.
    _log_requests(app)
    hosts.register(app, app.config.get("ALLOWED_HOSTS", settings.trusted_hosts))
    auth.register(app, api, app.config.get("VERIFIER") or settings.verifier())
    cors.register(app, app.config.get("CORS_ORIGINS", settings.cors_origins))
    errors.register(app)
    metrics.register(app)
    app.wsgi_app = BodyLimit(app.wsgi_app, MAX_BODY_BYTES)  # type: ignore[method-assign]
    return app


def _add_seed_routes(app: Flask) -> None:
    # The seed system's clients call /api/desk/ and /api/desk/<id>: same views, undocumented.
    collection = desks.DeskCollection.as_view("seed_desks")
    item = desks.DeskItem.as_view("seed_desk")
    app.add_url_rule("/api/desk", view_func=collection, strict_slashes=False)
    app.add_url_rule("/api/desk/<desk_id>", view_func=item, strict_slashes=False)


# A caller's X-Request-Id is kept when it is a plain token; otherwise the API makes one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _log_requests(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        given = request.headers.get("X-Request-Id", "")
        g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def log_request(response: Response) -> Response:
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        metrics.observe(response.status_code, elapsed / 1000)
        request_id = g.get("request_id") or uuid.uuid4().hex
        response.headers["X-Request-Id"] = request_id
        fields = {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": round(elapsed, 1),
            "request_id": request_id,
        }
        # The desk a write touched: with DESKS_LOG_LEVEL=DEBUG the same desk_id is on the
        # watcher's and the broadcaster's lines for its event (one write followed across
        # services); at INFO this line is the only one a write makes.
        desk_id = (request.view_args or {}).get("desk_id") or _created_id(response)
        if desk_id and request.method != "GET":
            fields["desk_id"] = desk_id
        log.info("request", extra=fields)
        return response


def _created_id(response: Response) -> str | None:
    location = response.headers.get("Location", "")
    return location.rsplit("/", 1)[-1] if response.status_code == 201 and location else None
