"""N writes while components fail at random: every client still sees every event once, in order.

The fault schedule comes from a seed, printed at the start (DESKS_FAULT_SEED=<seed> reruns the
same schedule; thread timing still varies from run to run).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from pymongo.errors import AutoReconnect, OperationFailure
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import connect

from desks.event_log import EventLog
from desks.settings import Settings
from desks.verify import verify
from launcher.system import System
from tests.conftest import running_system, wait_until
from tests.e2e.conftest import http
from watcher.checkpoint import Checkpoint

WRITES = 1000
CLIENTS = 3
FAULTS = 12


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("DESKS_FAULT_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fault seed: {value} (rerun with DESKS_FAULT_SEED={value})")
    return value


@pytest.fixture(params=["memory", "file"])
def system(request, tmp_path):
    path = ":memory:" if request.param == "memory" else str(tmp_path / "store.sqlite3")
    settings = Settings(embedded_path=path, api_port=0, broadcaster_port=0, lease_ttl_seconds=1.0)
    with running_system(settings) as system:
        yield system


@dataclass
class Client:
    """A dashboard that drops its connection at random and resumes with after=<last seq>."""

    url: str
    rng: random.Random
    seqs: list[int] = field(default_factory=list)
    resets: int = 0
    reconnects: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            after = self.seqs[-1] if self.seqs else 0
            try:
                # max_queue=None: the client library keeps reading while we stop, so hanging
                # up mid-replay is a prompt close handshake, not a 10 s close timeout.
                url = f"{self.url}?after={after}"
                with connect(url, open_timeout=5, max_queue=None, close_timeout=2) as ws:
                    budget = self.rng.randrange(50, 400)  # messages until it hangs up
                    while budget and not self.stop.is_set():
                        try:
                            message = json.loads(ws.recv(timeout=0.2))
                        except TimeoutError:
                            continue
                        if message["type"] == "reset":
                            self.resets += 1
                        elif message["type"] != "hello":
                            self.seqs.append(message["seq"])
                            budget -= 1
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError):
                time.sleep(0.05)  # the broadcaster is restarting
            self.reconnects += 1


def write_burst(system: System, rng: random.Random, done: list[tuple[str, str, int]]) -> None:
    """Create, patch and delete desks over HTTP; record each acknowledged change."""
    live: list[str] = []
    for n in range(WRITES):
        roll = rng.random()
        if not live or roll < 0.4:
            status, desk = http(
                "POST", f"{system.api_url}/api/desks", {"name": f"D{n}", "width": 1, "height": 1}
            )
            assert status == 201
            live.append(desk["id"])
            done.append(("desk_created", desk["id"], 1))
        elif roll < 0.85:
            desk_id = rng.choice(live)
            status, desk = http("PATCH", f"{system.api_url}/api/desks/{desk_id}", {"width": n + 2})
            assert status == 200
            done.append(("desk_updated", desk_id, desk["version"]))
        else:
            desk_id = live.pop(rng.randrange(len(live)))
            _, before = http("GET", f"{system.api_url}/api/desks/{desk_id}")
            assert http("DELETE", f"{system.api_url}/api/desks/{desk_id}")[0] == 204
            done.append(("desk_deleted", desk_id, before["version"]))


def kill_watcher(system: System, rng: random.Random, tokens: list[Any]) -> None:
    """Stop the watcher as kill -9 would leave things: lease unreleased, checkpoint behind."""
    system.watcher_lease.release = lambda: None  # a killed process releases nothing
    system.watcher.stop()
    if tokens:
        stale = rng.choice(tokens)
        system.store.database["watcher_checkpoints"].update_one(
            {"_id": "desks"}, {"$set": {"resume_token": stale}}
        )
    system.restart_watcher()


def test_nothing_lost_nothing_repeated_under_random_faults(system, seed):
    rng = random.Random(seed)
    events = EventLog(system.store.database)
    clients = [Client(system.broadcaster_url, random.Random(rng.random())) for _ in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for thread in threads:
        thread.start()
    done: list[tuple[str, str, int]] = []
    writer = threading.Thread(target=write_burst, args=(system, random.Random(rng.random()), done))
    writer.start()

    tokens: list[Any] = []
    oplog = system.store.client.oplog
    faults = [rng.choice(["watcher", "broadcaster", "resumable", "fatal"]) for _ in range(FAULTS)]
    for index, fault in enumerate(faults):
        wait_until(
            lambda i=index: len(done) >= (i + 1) * WRITES // (FAULTS + 1),
            timeout=60,
            describe=lambda: f"seed {seed}: writer stuck at {len(done)} ({writer.is_alive()=})",
        )
        tokens.append(Checkpoint(system.store.database).load())
        if fault == "watcher":
            kill_watcher(system, rng, [t for t in tokens if t is not None])
        elif fault == "broadcaster":
            system.restart_broadcaster()
        elif fault == "resumable":
            for _ in range(rng.randrange(1, 4)):
                oplog.inject_fault(AutoReconnect("injected network error"))
        else:
            oplog.inject_fault(OperationFailure("injected fatal cursor error", 2))
    writer.join(120)
    assert len(done) == WRITES

    wait_until(
        lambda: events.head() == WRITES,
        timeout=60,
        describe=lambda: f"seed {seed}: log head {events.head()}, watcher {system.watcher.running}",
    )
    logged = events.after(0, WRITES + 100)
    assert [e.seq for e in logged] == list(range(1, WRITES + 1)), f"seed {seed}"
    assert [(e.type, e.desk_id, e.version) for e in logged] == done, f"seed {seed}"

    wait_until(
        lambda: all(len(c.seqs) >= WRITES for c in clients),
        timeout=60,
        describe=lambda: (
            f"seed {seed}: broadcaster head {system.broadcaster_server.history.head}, "
            f"clients at {[c.seqs[-1:] for c in clients]} after {[len(c.seqs) for c in clients]} "
            f"events and {[c.reconnects for c in clients]} connections"
        ),
    )
    for client in clients:
        client.stop.set()
    for thread in threads:
        thread.join(10)
    for client in clients:
        assert client.seqs == list(range(1, WRITES + 1)), f"seed {seed}"
        assert client.resets == 0
        assert client.reconnects >= 2  # it really did drop and resume
    verdict = verify(system.store)  # and the log alone explains the store, desk by desk
    assert verdict.agree, f"seed {seed}: {verdict.differences[:10]}"
    print(f"faults applied: {faults}")
