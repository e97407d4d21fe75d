"""The watcher's probes say whether it is tailing, standing by, or failing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pymongo.errors import ServerSelectionTimeoutError

from desks.event_log import EventLog
from desks.service import Service
from tests.conftest import wait_until
from tests.watcher.test_publisher import append
from watcher.checkpoint import Checkpoint
from watcher.health import HealthServer, readiness
from watcher.stream import Watcher


def probe(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_ready_while_tailing_and_unavailable_while_the_store_fails(store):
    watcher = Watcher(store, EventLog(store.database), Checkpoint(store.database), 50)
    health = HealthServer("127.0.0.1", 0, watcher, [], EventLog(store.database), 1000)
    health.start()
    service = Service("watcher", watcher.run)
    try:
        assert probe(health.port, "/readyz")[0] == 503  # not started yet
        service.start()
        wait_until(lambda: probe(health.port, "/readyz")[0] == 200)
        assert probe(health.port, "/readyz")[1]["role"] == "active"
        for _ in range(50):  # the store keeps failing: never exits, reports it
            store.client.oplog.inject_fault(ServerSelectionTimeoutError("no servers"))
        wait_until(lambda: probe(health.port, "/readyz")[1]["role"] == "retrying")
        assert service.running
        assert probe(health.port, "/healthz") == (200, {"status": "alive"})
        assert probe(health.port, "/nope")[0] == 404
        url = f"http://127.0.0.1:{health.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        assert 'desks_watcher_role{desks_watcher_role="retrying"} 1.0' in text
        assert "desks_watcher_checkpoint_age_seconds " in text
    finally:
        service.stop()
        health.stop()


class FakePublisher:
    def __init__(self, url, position):
        self.url, self.position = url, position


class FakeWatcher:
    def __init__(self, role, leading):
        self.role, self.leading = role, leading
        self.ready = role in {"active", "standby"}


def test_ready_only_while_events_reach_a_broadcaster_without_lagging(store):
    events = EventLog(store.database)
    for seq in range(1, 11):
        append(events, seq)
    active = FakeWatcher("active", leading=True)

    def check(watcher, *positions, max_lag=5):
        publishers = [FakePublisher(f"ws://b{n}/publish", p) for n, p in enumerate(positions)]
        return readiness(watcher, publishers, events, max_lag)

    assert check(active, 10, None)[0] == 200  # one broadcaster reached is enough
    status, body = check(active, None, None)
    assert status == 503 and body["problems"] == ["publisher reaches no broadcaster"]
    status, body = check(active, 4, 10)
    assert status == 503
    assert body["problems"] == ["publisher to ws://b0/publish lags 6 events (limit 5)"]
    assert body["broadcasters"]["ws://b0/publish"] == {"connected": True, "lag": 6}
    assert check(FakeWatcher("standby", leading=False), None)[0] == 200  # ready to take over
    status, body = check(FakeWatcher("retrying", leading=True), 10)
    assert status == 503 and body["problems"] == ["watcher is retrying"]
