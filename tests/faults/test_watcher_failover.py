"""kill -9 of the active watcher process: the standby process carries on, losing nothing.

Runs on an embedded store file shared by the processes, and on a real replica set when
DESKS_TEST_MONGODB_URI names one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import free_port, wait_until
from tests.processes import http_status

ROOT = Path(__file__).resolve().parents[2]
URI = os.environ.get("DESKS_TEST_MONGODB_URI")


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def backend(request, tmp_path):
    """Yield (settings, environment) for one store several processes share."""
    if request.param == "embedded":
        path = str(tmp_path / "store.sqlite3")
        yield Settings(embedded_path=path), {"DESKS_EMBEDDED_PATH": path}
        return
    if not URI:
        pytest.skip("DESKS_TEST_MONGODB_URI is not set: needs a replica set")
    database = f"desks_failover_{uuid.uuid4().hex[:8]}"
    yield Settings(mongodb_uri=URI, database=database), {"MONGODB_URI": URI, "DESKS_DB": database}
    cleanup = open_store(Settings(mongodb_uri=URI))
    cleanup.client.drop_database(database)
    cleanup.close()


def role(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return str(json.load(response)["role"])
    except urllib.error.HTTPError as error:
        return str(json.load(error)["role"])
    except OSError:
        return None


def test_kill_9_of_the_active_watcher_loses_and_repeats_nothing(tmp_path, backend):
    settings, store_env = backend
    store = open_store(settings)
    desks = DeskRepository(store.desks)
    events = EventLog(store.database)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **store_env,
        "DESKS_PUBLISH_TOKEN": "failover-test",
        "DESKS_BROADCASTER_URL": f"ws://127.0.0.1:{free_port()}/",  # none: publishing retries
        "DESKS_LEASE_TTL_SECONDS": "3",
    }
    watchers = []
    try:
        for name in ("first", "second"):
            port = free_port()
            with (tmp_path / f"{name}.log").open("w") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "launcher.cli", "watcher"],
                    env={**env, "DESKS_WATCHER_HEALTH_PORT": str(port)},
                    stderr=log,
                )
            watchers.append((process, port))
            # Ready: tailing (the first, so no write precedes its stream) or standing by.
            wait_until(lambda p=port: http_status(f"http://127.0.0.1:{p}/readyz") == 200, 30)
        (first, first_port), (second, second_port) = watchers
        assert (role(first_port), role(second_port)) == ("active", "standby")

        for n in range(100):
            desks.create({"name": f"before {n}", "width": 1, "height": 1})
        wait_until(lambda: events.head() == 100, timeout=30)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        for n in range(100):
            desks.create({"name": f"after {n}", "width": 1, "height": 1})
        wait_until(lambda: role(second_port) == "active", timeout=30)
        wait_until(lambda: events.head() == 200, timeout=30)

        logged = events.after(0, 1000)
        assert [e.seq for e in logged] == list(range(1, 201))
        assert len({e.desk_id for e in logged}) == 200
    finally:
        for process, _ in watchers:
            if process.poll() is None:
                process.kill()
            process.wait(10)
        store.close()
