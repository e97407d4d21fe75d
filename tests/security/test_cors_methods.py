"""A page on a configured origin can use every method the API serves, not only some."""

from __future__ import annotations

import pytest

from api import create_app

ORIGIN = "https://dash.example.com"


@pytest.fixture
def cors_app(store):
    return create_app({"TESTING": True, "CORS_ORIGINS": [ORIGIN]}, store=store)


def test_a_preflight_allows_every_method_the_api_serves(cors_app):
    served = {
        method
        for rule in cors_app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods or ()
    } - {"OPTIONS"}
    assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= served
    client = cors_app.test_client()
    for method in sorted(served):
        preflight = client.options(
            "/api/desks/abc",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": method},
        )
        assert preflight.status_code == 200
        allowed = preflight.headers.get("Access-Control-Allow-Methods", "")
        assert method in allowed.replace(" ", "").split(","), (method, allowed)
