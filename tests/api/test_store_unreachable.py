"""With MongoDB unreachable the API answers 503 JSON quickly, never hangs or 500s."""

from __future__ import annotations

import pytest
from pymongo.errors import AutoReconnect

from api import create_app
from api.repository import DeskRepository
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import free_port


@pytest.fixture
def unreachable_client():
    # A real pymongo client aimed at a port where nothing listens.
    settings = Settings(
        mongodb_uri=f"mongodb://127.0.0.1:{free_port()}/?directConnection=true",
        server_selection_timeout_ms=300,
    )
    store = open_store(settings)
    yield create_app({"TESTING": True}, store=store).test_client()
    store.close()


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "/api/desks", None),
        ("get", "/api/desks/" + "a" * 24, None),
        ("post", "/api/desks", {"name": "a", "width": 1, "height": 1}),
        ("patch", "/api/desks/" + "a" * 24, {"width": 2}),
        ("delete", "/api/desks/" + "a" * 24, None),
    ],
)
def test_store_outage_is_503_json(unreachable_client, method, url, body):
    kwargs = {"json": body} if body is not None else {}
    response = getattr(unreachable_client, method)(url, **kwargs)
    assert response.status_code == 503
    assert response.json["code"] == 503
    assert "unreachable" in response.json["message"]
    assert response.headers["Retry-After"] == "5"


def test_readiness_fails_while_liveness_holds(unreachable_client):
    assert unreachable_client.get("/healthz").status_code == 200
    response = unreachable_client.get("/readyz")
    assert response.status_code == 503
    assert response.json["code"] == 503


def test_bad_input_is_still_422_without_a_store(unreachable_client):
    response = unreachable_client.post("/api/desks", json={"name": ""})
    assert response.status_code == 422


def test_the_registry_is_503_when_the_store_fails_at_its_first_read(client, monkeypatch):
    # The log's head answers; the desks' cursor fails when first read. The answer streams, so
    # that read must happen before it starts: after, a 200 would already be on its way.
    def failing(self):
        raise AutoReconnect("connection refused")
        yield  # a generator, like a cursor: nothing is read until iterated

    monkeypatch.setattr(DeskRepository, "every", failing)
    response = client.get("/api/registry")
    assert response.status_code == 503
    assert response.json["code"] == 503
    assert response.headers["Retry-After"] == "5"
