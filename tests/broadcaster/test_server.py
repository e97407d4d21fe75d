"""The broadcaster over real sockets: routes, auth, replay, hand-over and bad input."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from broadcaster.server import Broadcaster
from desks.events import DeskCreated
from tests.conftest import wait_until

TOKEN = "s3cret"


def event(seq):
    desk = {"id": f"{seq:024x}", "name": f"Desk {seq}", "width": 100, "height": 50, "version": 1}
    return DeskCreated(
        seq=seq, at="2026-11-28T14:30:45.000Z", desk_id=desk["id"], version=1, desk=desk
    ).encode()


@pytest.fixture
def server():
    broadcaster = Broadcaster(TOKEN, retain=1000)
    stop = threading.Event()
    thread = threading.Thread(target=broadcaster.run, args=("127.0.0.1", 0, stop), daemon=True)
    thread.start()
    assert broadcaster.listening.wait(10)
    yield broadcaster, f"ws://127.0.0.1:{broadcaster.port}"
    stop.set()
    thread.join(10)


@pytest.fixture
def publisher(server):
    _, url = server
    with connect(f"{url}/publish", additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        ready = json.loads(ws.recv(timeout=5))
        assert ready == {"type": "ready", "epoch": None, "head": 0, "retain": 1000}
        ws.send(json.dumps({"type": "log", "epoch": "e1", "after": 0}))
        yield ws


def receive(ws, count):
    return [json.loads(ws.recv(timeout=5)) for _ in range(count)]


def test_clients_get_hello_then_live_events_in_order(server, publisher):
    broadcaster, url = server
    with connect(f"{url}/") as a, connect(url) as b:
        assert receive(a, 1) == [{"type": "hello", "head": 0, "epoch": "e1"}]
        assert receive(b, 1)[0]["type"] == "hello"
        wait_until(lambda: len(broadcaster.clients) == 2)
        for seq in (1, 2, 3):
            publisher.send(event(seq))
        assert [m["seq"] for m in receive(a, 3)] == [1, 2, 3]
        assert [m["seq"] for m in receive(b, 3)] == [1, 2, 3]


def test_after_replays_then_goes_live_without_gap_or_duplicate(server, publisher):
    broadcaster, url = server
    for seq in range(1, 6):
        publisher.send(event(seq))
    wait_until(lambda: broadcaster.history.head == 5)
    with connect(f"{url}/?after=2&epoch=e1") as ws:
        assert receive(ws, 1)[0] == {"type": "hello", "head": 5, "epoch": "e1"}
        assert [m["seq"] for m in receive(ws, 3)] == [3, 4, 5]
        publisher.send(event(6))
        assert receive(ws, 1)[0]["seq"] == 6


def test_handover_under_concurrent_publishing_is_gap_free(server, publisher):
    broadcaster, url = server
    total = 300
    sender = threading.Thread(
        target=lambda: [publisher.send(event(s)) for s in range(1, total + 1)]
    )
    sender.start()
    wait_until(lambda: broadcaster.history.head >= 20)
    with connect(f"{url}/?after=10") as ws:
        receive(ws, 1)
        seqs = [m["seq"] for m in receive(ws, total - 10)]
    sender.join()
    assert seqs == list(range(11, total + 1))


@pytest.mark.parametrize("query", ["after=999", "after=0&epoch=otherlog"])
def test_positions_from_another_log_get_reset(server, publisher, query):
    broadcaster, url = server
    publisher.send(event(1))
    wait_until(lambda: broadcaster.history.head == 1)
    with connect(f"{url}/?{query}") as ws:
        assert [m["type"] for m in receive(ws, 2)] == ["hello", "reset"]
        publisher.send(event(2))
        assert receive(ws, 1)[0]["seq"] == 2


@pytest.mark.parametrize(
    "query", ["after=-1", "after=abc", "after=1.5", "after=1&after=2", "x=1", "epoch=%24"]
)
def test_malformed_query_closes_with_1008_and_a_reason(server, publisher, query):
    _, url = server
    with connect(f"{url}/?{query}") as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=5)
    assert closed.value.rcvd.code == 1008
    assert closed.value.rcvd.reason


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
def test_publish_needs_the_token(server, headers):
    _, url = server
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}/publish", additional_headers=headers)
    assert refused.value.response.status_code == 401


def test_unknown_path_is_404_and_healthz_answers(server):
    _, url = server
    with pytest.raises(InvalidStatus) as refused:
        connect(f"{url}/elsewhere")
    assert refused.value.response.status_code == 404
    http = url.replace("ws://", "http://")
    with urllib.request.urlopen(f"{http}/healthz", timeout=5) as response:
        assert response.status == 200
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{http}/nope", timeout=5)


def test_what_clients_send_is_ignored_and_cannot_publish(server, publisher):
    broadcaster, url = server
    with connect(url) as rogue, connect(url) as watcher:
        receive(rogue, 1)
        receive(watcher, 1)
        rogue.send(event(1))
        rogue.send("garbage")
        rogue.send(b"\x00\x01")
        publisher.send(event(1))
        assert receive(watcher, 1)[0]["seq"] == 1
        assert broadcaster.history.head == 1
        assert receive(rogue, 1)[0]["seq"] == 1


def test_a_gap_from_the_publisher_closes_it_without_broadcasting(server, publisher):
    broadcaster, url = server
    publisher.send(event(1))
    publisher.send(event(3))
    with pytest.raises(ConnectionClosed) as closed:
        publisher.recv(timeout=5)
    assert closed.value.rcvd.code == 1008
    assert broadcaster.history.head == 1
