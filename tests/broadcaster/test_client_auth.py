"""Clients present a token: refused with HTTP 401 at the handshake, closed 4401 at expiry."""

from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from broadcaster.server import Broadcaster
from desks.auth import Verifier, mint
from tests.broadcaster.test_server import event, new_log, running, writing

SECRET = "k" * 32


@pytest.fixture
def secured():
    with running(Broadcaster(new_log(), verifier=Verifier(secret=SECRET))) as (broadcaster, url):
        with writing(broadcaster) as publisher:
            yield broadcaster, url, publisher


@pytest.mark.parametrize(
    ("name", "token", "status"),
    [
        ("none", lambda: None, 401),
        ("expired", lambda: mint(SECRET, ["desks:read"], -60), 401),
        ("wrongly signed", lambda: mint("x" * 32, ["desks:read"], 60), 401),
        ("malformed", lambda: "abc", 401),
        ("no read scope", lambda: mint(SECRET, ["desks:write"], 60), 403),
    ],
)
def test_a_client_without_a_usable_token_is_refused_at_the_handshake(secured, name, token, status):
    _, url, _ = secured
    token = token()  # minted now: a token minted at collection may expire before the test runs
    query = f"?token={token}" if token else ""
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}/{query}", open_timeout=5)
    assert refused.value.response.status_code == status, name
    assert refused.value.response.headers["WWW-Authenticate"] == 'Bearer realm="desks"'


def test_a_token_in_the_query_or_the_header_is_accepted(secured):
    _, url, publisher = secured
    token = mint(SECRET, ["desks:read"], 60)
    with (
        connect(f"{url}/?token={token}") as by_query,
        connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as by_header,
    ):
        for client in (by_query, by_header):
            assert json.loads(client.recv(timeout=5))["type"] == "hello"
        publisher.send(event(1))
        for client in (by_query, by_header):
            assert json.loads(client.recv(timeout=5))["seq"] == 1


def test_a_client_whose_token_expires_is_closed_with_4401(secured):
    broadcaster, url, publisher = secured
    with connect(f"{url}/?token={mint(SECRET, ['desks:read'], 2)}") as client:
        assert json.loads(client.recv(timeout=5))["type"] == "hello"
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=10)
    assert closed.value.rcvd.code == 4401
    assert closed.value.rcvd.reason == "token expired"
    assert len(broadcaster.clients) == 0
