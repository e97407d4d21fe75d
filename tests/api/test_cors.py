"""CORS: only the configured dashboard origins may call the API from a browser elsewhere."""

from __future__ import annotations

import pytest

from api import create_app

ORIGIN = "https://dash.example.com"


@pytest.fixture
def cors_client(store):
    return create_app({"TESTING": True, "CORS_ORIGINS": [ORIGIN]}, store=store).test_client()


def test_a_configured_origin_may_preflight_and_read_the_headers_it_needs(cors_client):
    preflight = cors_client.options(
        "/api/desks/abc",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "Authorization, Content-Type, If-Match",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "if-match"} <= set(allowed.replace(" ", "").split(","))
    response = cors_client.get("/api/desks", headers={"Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = response.headers["Access-Control-Expose-Headers"]
    assert "X-Event-Seq" in exposed and "ETag" in exposed
    # What a page reads of the cursor's next page, a registry's size and a 503's wait.
    assert {"Link", "X-Total-Count", "Retry-After"} <= set(exposed.replace(" ", "").split(","))
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_another_origin_gets_no_cors_headers(cors_client):
    response = cors_client.get("/api/desks", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_is_allowed_by_default(client):
    response = client.get("/api/desks", headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in response.headers
