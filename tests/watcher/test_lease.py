"""Watcher high availability: one active watcher, a standby that takes over, no seq reused."""

from __future__ import annotations

from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import wait_until
from watcher.checkpoint import Checkpoint
from watcher.lease import Lease
from watcher.stream import Watcher

TTL = 0.6


def test_lease_is_exclusive_until_it_expires_or_is_released(store):
    a = Lease(store.database, "a", TTL)
    b = Lease(store.database, "b", TTL)
    assert a.acquire()
    assert not b.acquire()
    assert a.acquire()  # renewal
    assert a.holder() == "a"
    a.release()
    assert b.acquire()
    wait_until(lambda: b.holder() is None, timeout=5)  # expired: nobody renewed it
    assert a.acquire()


def start(store, events, name):
    lease = Lease(store.database, name, TTL)
    watcher = Watcher(store, events, Checkpoint(store.database), 50, lease=lease)
    service = Service(name, watcher.run)
    service.start()
    return service, watcher, lease


def test_standby_takes_over_within_the_ttl_and_no_seq_is_reused_or_skipped():
    store = open_store(Settings(embedded_path=":memory:"))
    events = EventLog(store.database)
    desks = DeskRepository(store.desks)
    first, first_watcher, first_lease = start(store, events, "first")
    wait_until(lambda: first_watcher.role == "active")
    second, second_watcher, _ = start(store, events, "second")
    wait_until(lambda: second_watcher.role == "standby")

    for n in range(10):
        desks.create({"name": f"before {n}", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 10)

    first_lease.release = lambda: None  # a killed process releases nothing
    first.stop()
    for n in range(10):  # written while nobody is active
        desks.create({"name": f"during {n}", "width": 1, "height": 1})
    wait_until(lambda: second_watcher.role == "active", timeout=10)
    wait_until(lambda: events.head() == 20, timeout=10)
    second.stop()

    logged = events.after(0, 100)
    assert [e.seq for e in logged] == list(range(1, 21))
    assert [e.desk["name"] for e in logged][10:] == [f"during {n}" for n in range(10)]
    assert len({e.desk_id for e in logged}) == 20
