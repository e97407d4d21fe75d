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
from watcher.health import HealthServer
from watcher.stream import Watcher


def probe(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_ready_while_tailing_and_unavailable_while_the_store_fails(store):
    watcher = Watcher(store, EventLog(store.database), Checkpoint(store.database), 50)
    health = HealthServer("127.0.0.1", 0, watcher, [])
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
    finally:
        service.stop()
        health.stop()
