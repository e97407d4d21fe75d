"""Pages from other sites cannot read the live feed; a Host the API does not answer to gets 400.

Before: the broadcaster checked no Origin (any page the user opened could read every desk),
and `GET /` with `Host: attacker.example` pointed the dashboard, and its token, there.
"""

from __future__ import annotations

import socket

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from api import create_app
from broadcaster.server import Broadcaster
from desks.auth import Verifier
from desks.hosts import LOCAL_HOSTS, PageOrigins, answering_to, host_allowed
from desks.settings import Settings, SettingsError
from tests.broadcaster.test_server import new_log, running

DASHBOARD = "https://dash.example.com"
SECRET = "k" * 32


def status_of(url: str, origin: str | None) -> int:
    """Open a client connection as a page of `origin` would; return the handshake's status."""
    try:
        with connect(url, origin=origin, open_timeout=10):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as refused:
        return refused.response.status_code


@pytest.mark.parametrize("verifier", [Verifier(), Verifier(SECRET)], ids=["auth off", "auth on"])
def test_a_page_from_another_site_cannot_open_the_live_feed(verifier):
    origins = PageOrigins(LOCAL_HOSTS, (DASHBOARD,))
    with running(Broadcaster(new_log(), retain=10, verifier=verifier, origins=origins)) as (_, url):
        for evil in ("https://evil.example", "http://localhost.evil.example:8000", "null"):
            assert status_of(url, evil) == 403
        if verifier.enabled:
            return  # the rest would be refused for want of a token, as it should
        # The dashboard's own pages (any port: the API serves them, not the broadcaster), the
        # CORS origins, and clients that are not browsers (no Origin) get in.
        for ours in ("http://localhost:8000", "http://127.0.0.1:8000", "http://[::1]:8000"):
            assert status_of(url, ours) == 101
        assert status_of(url, DASHBOARD) == 101
        assert status_of(url, None) == 101


def test_a_host_the_api_does_not_answer_to_gets_400_and_no_page(store):
    client = create_app({"TESTING": True}, store=store).test_client()
    for path in ("/", "/api/desks", "/docs", "/openapi.json"):
        response = client.get(path, headers={"Host": "attacker.example:8000"})
        assert response.status_code == 400
        assert response.json["errors"] == {"headers": {"Host": ["Not an allowed host."]}}
        assert "attacker" not in response.text
    created = client.post(
        "/api/desks",
        json={"name": "Mesa", "width": 1, "height": 1},
        headers={"Host": "attacker.example"},
    )
    assert created.status_code == 400
    assert client.get("/api/desks").json == []  # nothing written
    for ours in ("localhost", "127.0.0.1:8000", "[::1]:8000"):
        assert client.get("/", headers={"Host": ours}).status_code == 200


def test_probes_answer_a_replica_named_by_its_address(store):
    # A balancer's health check and Prometheus's service discovery name a replica by its IP:
    # a 400 there took every API out of the balancer (found in review).
    client = create_app({"TESTING": True}, store=store).test_client()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path, headers={"Host": "172.18.0.5:8000"}).status_code == 200


def test_allowed_hosts_follow_djangos_rules():
    assert host_allowed("desks.example.com", [".example.com"])
    assert host_allowed("example.com:443", [".example.com"])
    assert not host_allowed("badexample.com", [".example.com"])
    assert host_allowed("anything.test", ["*"])
    assert not host_allowed("evil.test/x", ["*"])  # not a host at all
    assert host_allowed("[::1]:8000", LOCAL_HOSTS)  # werkzeug's own check cannot match it
    settings = Settings.from_env({"DESKS_ALLOWED_HOSTS": " Desks.Example.com, .corp.test "})
    assert settings.trusted_hosts == ("desks.example.com", ".corp.test")
    assert settings.page_origins.refuse("https://desks.example.com") is None
    assert host_allowed("localhost.", LOCAL_HOSTS)  # a fully qualified name's final dot
    assert not host_allowed("localhost..", LOCAL_HOSTS)
    dotted = Settings.from_env({"DESKS_ALLOWED_HOSTS": "a.example.com."})
    assert host_allowed("a.example.com", dotted.trusted_hosts)
    # CORS origins as a browser sends them: a page listed in capitals or with its default
    # port is still let in.
    listed = Settings.from_env(
        {"DESKS_CORS_ORIGINS": "https://Dash.Example.com:443,http://b.example:80,http://c:81"}
    )
    assert listed.cors_origins == ("https://dash.example.com", "http://b.example", "http://c:81")
    assert listed.page_origins.refuse("https://dash.example.com") is None
    for bad in ("https://desks.example.com", "desks.example.com:8000", "a/b"):
        with pytest.raises(SettingsError, match="DESKS_ALLOWED_HOSTS"):
            Settings.from_env({"DESKS_ALLOWED_HOSTS": bad})


def test_bound_to_every_address_it_answers_to_this_machines_names():
    assert Settings().trusted_hosts == LOCAL_HOSTS
    everywhere = answering_to("0.0.0.0")
    assert set(LOCAL_HOSTS) < set(everywhere)
    assert socket.gethostname().lower() in everywhere
    # The address others reach it by, which its name may not resolve to (here: 127.0.0.1).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return  # no IPv4 route on this machine
        assert probe.getsockname()[0] in everywhere
    assert answering_to("192.0.2.7") == (*LOCAL_HOSTS, "192.0.2.7")
