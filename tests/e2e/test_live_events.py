"""A desk written over REST reaches every client once, in order; the API plays no part."""

from __future__ import annotations

import json
import threading

from desks.event_log import EventLog
from tests.conftest import wait_until
from tests.e2e.conftest import http
from watcher.checkpoint import Checkpoint

SEED = {"name": "Mesa Ejecutiva", "width": 180, "height": 90}


def test_post_patch_delete_reach_clients_as_three_ordered_events(system, listen):
    client = listen(system.broadcaster_url)
    assert client.next()["type"] == "hello"
    status, desk = http("POST", f"{system.api_url}/api/desk/", SEED)
    assert status == 201
    assert http("PATCH", f"{system.api_url}/api/desk/{desk['id']}", {"width": 200})[0] == 200
    assert http("DELETE", f"{system.api_url}/api/desk/{desk['id']}")[0] == 204

    created, updated, deleted = client.events(3)
    assert client.quiet()
    assert [e["seq"] for e in (created, updated, deleted)] == [1, 2, 3]
    assert [e["type"] for e in (created, updated, deleted)] == [
        "desk_created",
        "desk_updated",
        "desk_deleted",
    ]
    assert created["desk"] == desk
    assert created["desk_id"] == desk["id"]
    assert (updated["version"], updated["desk"]["width"]) == (2, 200)
    assert updated["changes"]["set"]["width"] == 200
    assert updated["changes"]["previous"]["width"] == 180
    assert (deleted["desk"]["name"], deleted["version"]) == ("Mesa Ejecutiva", 2)
    assert all(e["at"].endswith("Z") for e in (created, updated, deleted))

    # A second client resuming after seq 1 gets 2 and 3, then live events.
    late = listen(f"{system.broadcaster_url}?after=1")
    assert late.next() == {
        "type": "hello",
        "head": 3,
        "epoch": EventLog(system.store.database).epoch(),
    }
    assert [e["seq"] for e in late.events(2)] == [2, 3]
    http("POST", f"{system.api_url}/api/desks", SEED)
    assert late.next()["seq"] == 4
    assert client.next()["seq"] == 4


def test_snapshot_header_lets_a_dashboard_subscribe_without_gap(system, listen):
    http("POST", f"{system.api_url}/api/desks", SEED)
    wait_until(lambda: EventLog(system.store.database).head() == 1)
    import urllib.request

    with urllib.request.urlopen(f"{system.api_url}/api/desks", timeout=5) as response:
        head = int(response.headers["X-Event-Seq"])
    assert head == 1
    client = listen(f"{system.broadcaster_url}?after={head}")
    assert client.next()["type"] == "hello"
    http("POST", f"{system.api_url}/api/desks", {**SEED, "name": "Otra"})
    assert client.next()["desk"]["name"] == "Otra"


def test_history_over_rest_pages_in_order(system):
    for n in range(5):
        http("POST", f"{system.api_url}/api/desks", {**SEED, "name": f"D{n}"})
    wait_until(lambda: EventLog(system.store.database).head() == 5)
    status, page = http("GET", f"{system.api_url}/api/events?after=1&limit=2")
    assert status == 200
    assert [e["seq"] for e in page] == [2, 3]
    assert [e["seq"] for e in http("GET", f"{system.api_url}/api/events?after=3")[1]] == [4, 5]
    assert http("GET", f"{system.api_url}/api/events?after=-1")[0] == 422
    assert http("GET", f"{system.api_url}/api/events?limit=0")[0] == 422


def test_watcher_restarted_mid_burst_loses_and_repeats_nothing(system, listen):
    client = listen(system.broadcaster_url)
    client.next()
    events = EventLog(system.store.database)
    total = 300
    written: list[tuple[str, int]] = []

    def burst():
        status, desk = http("POST", f"{system.api_url}/api/desks", SEED)
        written.append((desk["id"], 1))
        for n in range(total - 1):
            status, desk = http(
                "PATCH", f"{system.api_url}/api/desks/{desk['id']}", {"width": n + 1}
            )
            assert status == 200
            written.append((desk["id"], desk["version"]))

    writer = threading.Thread(target=burst)
    writer.start()
    wait_until(lambda: events.head() >= 50, timeout=30)
    stale = Checkpoint(system.store.database).load()
    wait_until(lambda: events.head() >= 150, timeout=30)
    system.watcher.stop()
    # Killed after logging but before checkpointing: the checkpoint lags behind the log.
    system.store.database["watcher_checkpoints"].update_one(
        {"_id": "desks"}, {"$set": {"resume_token": stale}}
    )
    system.restart_watcher()
    writer.join(60)
    wait_until(lambda: events.head() == total, timeout=30)

    logged = events.after(0, total + 10)
    assert [e.seq for e in logged] == list(range(1, total + 1))
    assert [(e.desk_id, e.version) for e in logged] == written
    received = client.events(total)
    assert [e["seq"] for e in received] == list(range(1, total + 1))
    assert client.quiet()


def test_api_keeps_answering_while_watcher_and_broadcaster_are_down(system, listen):
    system.watcher.stop()
    system.broadcaster.stop()
    status, desk = http("POST", f"{system.api_url}/api/desks", SEED)
    assert status == 201
    assert http("GET", f"{system.api_url}/api/desks/{desk['id']}")[0] == 200
    system.restart_watcher()
    system.restart_broadcaster()
    client = listen(f"{system.broadcaster_url}?after=0")
    assert client.next()["type"] == "hello"
    assert client.next()["desk_id"] == desk["id"]


def test_a_retried_keyed_post_is_one_desk_and_one_event(system, listen):
    import urllib.request

    client = listen(system.broadcaster_url)
    assert client.next()["type"] == "hello"
    answers = []
    for _ in range(3):  # a client that never saw the answer, retrying
        request = urllib.request.Request(
            f"{system.api_url}/api/desks",
            data=b'{"name": "Mesa", "width": 180, "height": 90}',
            headers={"Content-Type": "application/json", "Idempotency-Key": "retry-1"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answers.append((response.status, json.load(response)["id"]))
    assert len(set(answers)) == 1 and answers[0][0] == 201
    assert client.next()["desk_id"] == answers[0][1]
    assert client.quiet(1.0)  # no second event
