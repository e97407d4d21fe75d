"""The dashboard page: where it points browsers, and the fence around it."""

from __future__ import annotations

import re

from api import create_app

IMPORTED = re.compile(r'from "\./([\w.]+)";$', re.M)  # a module's imports of its siblings


def broadcaster_of(html: str) -> str:
    found = re.search(r'<meta name="desks-broadcaster" content="([^"]*)">', html)
    assert found
    return found.group(1)


def test_the_page_points_at_the_broadcaster_on_its_own_host(store):
    client = create_app({"ALLOWED_HOSTS": ["desks.internal", "localhost"]}, store).test_client()
    response = client.get("/", headers={"Host": "desks.internal:8000"})
    assert response.status_code == 200
    assert broadcaster_of(response.text) == "ws://desks.internal:8765/"
    assert response.headers["Vary"] == "Host"  # no cache may give it to another host's users
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self' ws://desks.internal:8765" in policy
    assert "unsafe-inline" not in policy
    # Its files are served from the API too: nothing from a CDN.
    for path in ("/static/dashboard.js", "/static/dashboard.css"):
        with client.get(path) as served:  # a streamed file: closed with the response
            assert served.status_code == 200
    assert "https://" not in response.text


def test_an_https_page_uses_wss_and_an_ipv6_host_keeps_its_brackets(client):
    secure = client.get("/", base_url="https://[::1]:8443")
    assert broadcaster_of(secure.text) == "wss://[::1]:8765/"


def test_a_configured_public_url_wins(store):
    app = create_app({"DESKS_PUBLIC_BROADCASTER_URL": "wss://desks.example.com/live/"}, store)
    response = app.test_client().get("/")
    assert broadcaster_of(response.text) == "wss://desks.example.com/live/"
    assert (
        "connect-src 'self' wss://desks.example.com" in response.headers["Content-Security-Policy"]
    )
    assert "Vary" not in response.headers


def test_a_link_with_a_query_still_opens_the_page(client):
    assert client.get("/?utm_source=mail").status_code == 200
    with client.get("/static/dashboard.js?v=2") as served:
        assert served.status_code == 200
    assert client.get("/api/desks?utm_source=mail").status_code == 422  # the API stays strict


def test_a_markup_injecting_host_header_is_refused(client):
    response = client.get("/", headers={"Host": 'x"><script>alert(1)</script>'})
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text


def test_every_module_the_page_imports_is_served_as_javascript(client):
    # The dashboard is ES modules served as they are: a module missing or served as another
    # type would stop the page in every browser (strict MIME checking for modules).
    pending, seen = ["dashboard.js"], set()
    while pending:
        name = pending.pop()
        seen.add(name)
        with client.get(f"/static/{name}") as served:
            assert served.status_code == 200, name
            assert served.mimetype == "text/javascript", (name, served.mimetype)
            source = served.get_data(as_text=True)
        pending += [found for found in IMPORTED.findall(source) if found not in seen]
    assert {"live.js", "rows.js", "table.js", "form.js", "token.js"} <= seen
    # Each is preloaded by the page: fetched at once, not one import level at a time.
    page = client.get("/").get_data(as_text=True)
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/static/([\w.]+)">', page))
    assert preloaded == seen - {"dashboard.js"}
