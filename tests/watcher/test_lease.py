"""Watcher high availability: one active watcher, a standby that takes over, no seq reused."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import timedelta

from api.repository import DeskRepository
from desks.desk import utc_now
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import open_store
from tests.conftest import wait_until
from tests.processes import desks_env
from watcher import liveness
from watcher.checkpoint import Checkpoint
from watcher.lease import LEASES, Lease
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


HOLD = """
import sys, time
from desks.settings import Settings
from desks.store import open_store
from watcher.lease import LEASES, Lease
store = open_store(Settings(embedded_path=sys.argv[1]))
assert Lease(store.database, "holder", 3600).acquire()
print("held", flush=True)
time.sleep(3600)
"""


def holding_process(path):
    """Start a process that takes a one-hour lease on the store at `path`, and wait for it."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=desks_env(),
    )
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_lease_whose_holder_was_killed_on_this_machine_is_taken_over_at_once(tmp_path):
    path = tmp_path / "store.sqlite3"
    holder = holding_process(path)
    store = open_store(Settings(embedded_path=str(path)))
    successor = Lease(store.database, "successor", 3600)
    try:
        assert not successor.acquire()  # alive: its lease stands
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert successor.acquire()  # gone: no hour-long wait
        assert successor.term == 2
        assert successor.holder() == "successor"
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        store.close()


def test_a_holder_elsewhere_or_alive_keeps_its_lease_until_it_expires(store):
    here = liveness.this_process()
    assert here is not None
    leases = store.database[LEASES]
    successor = Lease(store.database, "successor", 3600)
    for holder in (
        {**here, "host": "another-host"},  # nothing is provable about another machine
        {**here, "boot": "another-boot"},  # nor about a PID from before a reboot
        here,  # this very process: alive
    ):
        leases.replace_one(
            {"_id": "desks"},
            {
                "owner": "x",
                "term": 1,
                "expires_at": utc_now() + timedelta(hours=1),
                "holder": holder,
            },
            upsert=True,
        )
        assert not successor.acquire(), holder


def test_a_holder_whose_pid_now_names_another_process_has_exited(store):
    here = liveness.this_process()
    assert here is not None
    store.database[LEASES].insert_one(
        {
            "_id": "desks",
            "owner": "x",
            "term": 4,
            "expires_at": utc_now() + timedelta(hours=1),
            "holder": {**here, "started": here["started"] - 1},  # same pid, started earlier
        }
    )
    successor = Lease(store.database, "successor", 3600)
    assert successor.acquire()
    assert successor.term == 5


def test_a_holder_that_proc_hides_is_not_taken_for_gone(monkeypatch):
    here = liveness.this_process()
    assert here is not None

    def hidden(pid):  # /proc mounted with hidepid: other users' processes have no entry
        raise FileNotFoundError(f"/proc/{pid}/stat")

    monkeypatch.setattr(liveness, "_start_time", hidden)
    monkeypatch.setattr(liveness, "this_process", lambda: here)
    assert not liveness.provably_gone(here)  # this very process: alive, whatever /proc shows
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the kernel knows no such process
    assert liveness.provably_gone({**here, "pid": child.pid})
