"""The watcher's probes say whether it is tailing, standing by, or failing."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from pymongo.errors import ServerSelectionTimeoutError

from desks.event_log import EventLog
from desks.service import Service
from tests.conftest import wait_until
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
    health = HealthServer("127.0.0.1", 0, watcher)
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


class FakeWatcher:
    def __init__(self, role):
        self.role = role
        self.ready = role in {"active", "standby"}


def test_ready_while_logging_or_standing_by_and_the_body_says_why_not():
    assert readiness(FakeWatcher("active")) == (
        200,
        {"status": "ready", "role": "active", "problems": []},
    )
    assert readiness(FakeWatcher("standby"))[0] == 200  # ready to take over
    status, body = readiness(FakeWatcher("retrying"))
    assert status == 503 and body["problems"] == ["watcher is retrying"]
