"""kill -9 of the active watcher process: the standby process carries on, losing nothing.

Runs on an embedded store file shared by the processes, and on a real replica set when
DESKS_TEST_MONGODB_URI names one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import urllib.error
import urllib.request
import uuid

import pytest
from websockets.sync.client import connect

from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import free_port, wait_until
from tests.processes import desks_env, http_status, spawned

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
    ws_port = free_port()
    env = desks_env(
        **store_env,
        DESKS_BROADCASTER_URL=f"ws://127.0.0.1:{ws_port}/",
        DESKS_LEASE_TTL_SECONDS="3",
    )
    with contextlib.ExitStack() as stack:
        stack.callback(store.close)
        broadcaster_log = tmp_path / "broadcaster.log"
        stack.enter_context(spawned(broadcaster_log, env, "broadcaster", "--port", str(ws_port)))
        wait_until(lambda: http_status(f"http://127.0.0.1:{ws_port}/healthz") == 200, 30)
        watchers = []
        for name in ("first", "second"):
            port = free_port()
            process = stack.enter_context(
                spawned(
                    tmp_path / f"{name}.log",
                    {**env, "DESKS_WATCHER_HEALTH_PORT": str(port)},
                    "watcher",
                )
            )
            watchers.append((process, port))
            # Ready: tailing (the first, so no write precedes its stream), or standing by.
            wait_until(lambda p=port: http_status(f"http://127.0.0.1:{p}/readyz") == 200, 30)
        (first, first_port), (second, second_port) = watchers
        assert (role(first_port), role(second_port)) == ("active", "standby")
        client = stack.enter_context(connect(f"ws://127.0.0.1:{ws_port}/", open_timeout=5))
        assert json.loads(client.recv(timeout=10))["type"] == "hello"

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
        delivered = [json.loads(client.recv(timeout=30)) for _ in range(200)]
        assert [event["seq"] for event in delivered] == list(range(1, 201))
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)  # and nothing twice
        # The watchers took turns writing one log: the broadcaster followed it throughout.
        followed = broadcaster_log.read_text().count('msg="following log"')
        assert followed == 1, broadcaster_log.read_text()
