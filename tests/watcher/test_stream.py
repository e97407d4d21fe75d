"""The watcher: every change logged once, in order, across restarts and lost checkpoints."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect, OperationFailure

from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import open_store
from desks.verify import verify
from embedded import EmbeddedClient
from embedded.oplog import history_lost
from tests.conftest import wait_until
from watcher.checkpoint import Checkpoint
from watcher.stream import Watcher, _enable_images


@pytest.fixture
def embedded():
    return EmbeddedClient(noop_interval=0.05)


@pytest.fixture
def store(embedded):
    return open_store(Settings(embedded_path=":memory:"), embedded)


@pytest.fixture
def events(store):
    return EventLog(store.database)


@pytest.fixture
def desks(store):
    return DeskRepository(store.desks)


def start(store, events, checkpoint=None):
    watcher = Watcher(store, events, checkpoint or Checkpoint(store.database), 50)
    service = Service("watcher", watcher.run)
    service.watcher = watcher
    service.start()
    # Writes before the stream opens are before "now": a first start never logs them.
    wait_until(watcher.healthy.is_set)
    return service


def snapshot_read(store):
    """Tell whether an owed resync's snapshot has been read: a write from now on is not in it
    (it would be, and logged as a desk_snapshot, if made while the snapshot is read)."""
    checkpoint = store.database["watcher_checkpoints"].find_one({"_id": "desks"}) or {}
    return "resync" not in checkpoint and checkpoint.get("resume_token") is not None


def log_of(events):
    return events.after(0, 100_000)


def test_each_write_is_logged_once_in_order(store, events, desks):
    watcher = start(store, events)
    desk = desks.create({"name": "A", "width": 1, "height": 1})
    desks.update(str(desk["_id"]), {"width": 2}, None)
    desks.delete(str(desk["_id"]), None)
    wait_until(lambda: events.head() == 3)
    watcher.stop()
    logged = log_of(events)
    assert [(e.seq, e.type, e.version) for e in logged] == [
        (1, "desk_created", 1),
        (2, "desk_updated", 2),
        (3, "desk_deleted", 2),
    ]
    assert logged[2].desk["name"] == "A"


def test_restart_resumes_from_the_checkpoint_without_loss(store, events, desks):
    watcher = start(store, events)
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    watcher.stop()
    desks.create({"name": "B", "width": 1, "height": 1})  # while the watcher is down
    watcher = start(store, events)
    desks.create({"name": "C", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 3)
    watcher.stop()
    assert [e.desk["name"] for e in log_of(events)] == ["A", "B", "C"]


def test_restart_on_the_same_store_file_resumes_from_the_checkpoint(tmp_path):
    settings = Settings(embedded_path=str(tmp_path / "store.sqlite3"))

    def run_until(head, write):
        store = open_store(settings)
        events = EventLog(store.database)
        watcher = start(store, events)
        for name in write:
            DeskRepository(store.desks).create({"name": name, "width": 1, "height": 1})
        wait_until(lambda: events.head() == head)
        watcher.stop()
        logged = log_of(events)
        store.close()
        return logged

    run_until(2, "AB")
    writer = open_store(settings)  # while no watcher runs, as after a crash
    DeskRepository(writer.desks).create({"name": "C", "width": 1, "height": 1})
    writer.close()
    logged = run_until(4, "D")
    assert [(e.seq, e.type) for e in logged] == [(n, "desk_created") for n in range(1, 5)]
    assert [e.desk["name"] for e in logged] == ["A", "B", "C", "D"]


def test_a_lost_checkpoint_write_never_logs_a_change_twice(store, events, desks):
    watcher = start(store, events)
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    stale = Checkpoint(store.database).load()
    for name in "BCD":
        desks.create({"name": name, "width": 1, "height": 1})
    wait_until(lambda: events.head() == 4)
    watcher.stop()
    # As if killed after logging B-D but before checkpointing them.
    store.database["watcher_checkpoints"].update_one(
        {"_id": "desks"}, {"$set": {"resume_token": stale}}
    )
    watcher = start(store, events)
    desks.create({"name": "E", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 5)
    watcher.stop()
    assert [e.desk["name"] for e in log_of(events)] == ["A", "B", "C", "D", "E"]


class CountingCheckpoint(Checkpoint):
    """A checkpoint that counts the polls it is told of and the writes it makes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.polls = self.writes = 0

    def idle(self, token, logged_through=None):
        self.polls += 1
        super().idle(token, logged_through)

    def _write(self, *args, **kwargs):
        self.writes += 1
        super()._write(*args, **kwargs)


def test_an_idle_watcher_saves_its_checkpoint_once_per_idle_interval(store, events, desks):
    now = [0.0]
    checkpoint = CountingCheckpoint(store.database, idle_interval=60, clock=lambda: now[0])
    watcher = start(store, events, checkpoint)
    assert checkpoint.writes == 1  # started from "now": that position is saved at once
    wait_until(lambda: checkpoint.polls >= 20)
    assert checkpoint.writes == 1  # empty polls move the token; nothing is written
    now[0] += 60
    wait_until(lambda: checkpoint.writes == 2)  # a minute on: kept inside the oplog window
    first = Checkpoint(store.database).load()

    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    polls = checkpoint.polls
    wait_until(lambda: checkpoint.polls >= polls + 10)
    assert checkpoint.writes == 2  # throttled: within a second of the last save
    now[0] += 1
    wait_until(lambda: checkpoint.writes == 3)  # due: saved by the next empty poll
    assert Checkpoint(store.database).load() != first
    polls = checkpoint.polls
    wait_until(lambda: checkpoint.polls >= polls + 20)
    watcher.stop()
    assert checkpoint.writes == 3


def test_transient_errors_are_retried_not_fatal(embedded, store, events, desks):
    watcher = start(store, events)
    wait_until(lambda: Checkpoint(store.database).load())
    for _ in range(3):
        embedded.oplog.inject_fault(AutoReconnect("network blip"))
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    assert watcher.running
    watcher.stop()


def logged_count(kind):
    return REGISTRY.get_sample_value("desks_watcher_events_logged_total", {"type": kind}) or 0


def test_history_lost_starts_over_from_now_instead_of_crash_looping(embedded, store, events, desks):
    counted = {kind: logged_count(kind) for kind in ("resync", "snapshot", "desk_snapshot")}
    watcher = start(store, events)
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    watcher.stop()
    desks.create({"name": "lost", "width": 1, "height": 1})
    embedded.oplog.forget_history()
    watcher = start(store, events)
    assert watcher.watcher.healthy.wait(10)  # tailing again, from now
    wait_until(lambda: events.head() >= 2 and snapshot_read(store))
    desks.create({"name": "B", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 6)
    watcher.stop()
    logged = log_of(events)
    assert [e.type for e in logged] == [
        "desk_created",
        "resync",
        "snapshot",  # the log alone rebuilds the store: every desk as it stood
        "desk_snapshot",
        "desk_snapshot",
        "desk_created",
    ]
    assert logged[1].reason == logged[2].reason == "history_lost"
    # Counted like any logged event (desks_watcher_events_logged_total).
    assert {kind: logged_count(kind) - n for kind, n in counted.items()} == {
        "resync": 1,
        "snapshot": 1,
        "desk_snapshot": 2,
    }
    assert [logged[3].desk["name"], logged[4].desk["name"]] == ["A", "lost"]
    assert logged[5].desk["name"] == "B"
    verdict = verify(store)
    assert verdict.agree, verdict.differences  # "lost" was never logged, yet it is explained
    assert (verdict.desks, verdict.events) == (3, 6)
    # The past: known up to the last event before the loss, and again once the snapshot is
    # complete; not in between.
    assert [events.unknown_state(seq) is None for seq in range(1, 7)] == [
        True,
        False,
        False,
        False,
        True,
        True,
    ]
    assert [d["name"] for d in events.as_of(1, None, 0, 10).desks] == ["A"]
    assert [d["name"] for d in events.as_of(5, None, 0, 10).desks] == ["A", "lost"]
    assert events.as_of(6, "b", 0, 10)[:2] == ([logged[5].desk], 1)


def test_history_lost_at_the_first_poll_also_resyncs(embedded, store, events, desks):
    watcher = start(store, events)
    assert watcher.watcher.healthy.wait(10)
    embedded.oplog.inject_fault(history_lost("injected"))
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: any(e.type == "resync" for e in log_of(events)))
    wait_until(lambda: snapshot_read(store))
    desks.create({"name": "B", "width": 1, "height": 1})
    wait_until(lambda: log_of(events)[-1].type == "desk_created")
    watcher.stop()
    assert [e.seq for e in log_of(events)] == list(range(1, len(log_of(events)) + 1))


def test_dropping_the_collection_resyncs_and_carries_on(store, events, desks):
    watcher = start(store, events)
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 1)
    store.desks.drop()
    wait_until(lambda: events.head() == 3)  # resync, and a snapshot of no desks
    assert [(e.type, e.reason) for e in log_of(events)[1:]] == [
        ("resync", "invalidated"),
        ("snapshot", "invalidated"),
    ]
    assert watcher.watcher.healthy.wait(10)
    desks.create({"name": "B", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 4)
    watcher.stop()
    assert verify(store).agree


def test_a_resync_owed_survives_a_crash_before_it_is_logged(store, events, desks):
    Checkpoint(store.database).start_over("history_lost")  # crashed right after this
    watcher = start(store, events)
    wait_until(lambda: events.head() == 2)
    watcher.stop()
    assert [e.type for e in log_of(events)] == ["resync", "snapshot"]
    assert Checkpoint(store.database).load() is not None


@pytest.mark.parametrize("token", [{"_data": "not hex"}, {"nope": 1}, {"_data": "82" + "0" * 26}])
def test_an_unusable_checkpoint_starts_over_instead_of_retrying_forever(
    store, events, desks, token
):
    store.database["watcher_checkpoints"].insert_one({"_id": "desks", "resume_token": token})
    watcher = start(store, events)
    wait_until(lambda: events.head() >= 2 and snapshot_read(store))  # resync, empty snapshot
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 3)
    watcher.stop()
    assert [e.type for e in log_of(events)] == ["resync", "snapshot", "desk_created"]


def test_a_document_that_is_not_a_desk_is_logged_with_what_it_has(store, events, desks):
    watcher = start(store, events)
    assert watcher.watcher.healthy.wait(10)
    key = store.desks.insert_one({"written": "by hand", "no": "desk fields"}).inserted_id
    desks.create({"name": "A", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 2)
    assert watcher.running
    watcher.stop()
    odd, desk = log_of(events)
    assert (odd.desk, odd.version) == ({"id": str(key)}, 0)
    assert desk.desk["name"] == "A"


def test_writes_the_snapshot_already_shows_are_not_logged_twice(embedded, store, events, desks):
    watcher = start(store, events)
    kept = [desks.create({"name": f"kept {n}", "width": 1, "height": 1}) for n in range(3)]
    doomed = desks.create({"name": "doomed", "width": 1, "height": 1})
    wait_until(lambda: events.head() == 4)
    watcher.stop()
    embedded.oplog.forget_history()  # the next start owes a resync and a snapshot

    restarted = Watcher(store, events, Checkpoint(store.database), 50)
    log_resync = restarted._log_resync

    def resync_then_write(reason):
        log_resync(reason)
        # The new stream is open and the snapshot not read yet: each of these writes is in
        # what the snapshot reads AND comes through the stream after it.
        born = desks.create({"name": "born during", "width": 1, "height": 1})
        desks.update(str(born["_id"]), {"width": 2}, None)
        desks.create({"name": "also born during", "width": 1, "height": 1})
        desks.update(str(kept[0]["_id"]), {"width": 3}, None)
        desks.delete(str(doomed["_id"]), None)
        fleeting = desks.create({"name": "fleeting", "width": 1, "height": 1})
        desks.delete(str(fleeting["_id"]), None)

    restarted._log_resync = resync_then_write
    log_snapshot, snapshots = restarted._log_snapshot, []
    restarted._log_snapshot = lambda reason: snapshots.append(log_snapshot(reason)) or snapshots[-1]
    service = Service("watcher", restarted.run)
    service.start()
    wait_until(lambda: snapshots)  # a write from now on is not in the snapshot
    after = desks.create({"name": "after", "width": 1, "height": 1})
    wait_until(lambda: getattr(log_of(events)[-1], "desk_id", None) == str(after["_id"]))
    service.stop()

    verdict = verify(store)
    assert verdict.agree, verdict.differences  # and the log contradicts itself nowhere
    head = events.head()
    assert events.as_of(head, None, 0, 100)[1] == store.desks.count_documents({}) == 6
    marker = next(e.seq for e in log_of(events) if e.type == "snapshot")
    overlap = [(e.type, e.desk["name"]) for e in log_of(events) if e.seq > marker][5:]
    # Not logged again: the born desks' creations and the updates (the snapshot shows them at
    # those versions), the deletion of a desk the snapshot never showed. Logged: a desk the
    # snapshot never saw, created and deleted meanwhile, and what came after.
    assert overlap == [
        ("desk_created", "fleeting"),
        ("desk_deleted", "fleeting"),
        ("desk_created", "after"),
    ]


def test_changes_read_again_after_a_retry_are_judged_where_they_belong(embedded, store, events):
    desks = DeskRepository(store.desks)
    checkpoint = Checkpoint(store.database, interval=3600)  # the re-read goes back to the snapshot
    checkpoint.start_over("history_lost")
    watcher = Watcher(store, events, checkpoint, 50)
    born: list[str] = []
    log_resync, log_snapshot = watcher._log_resync, watcher._log_snapshot

    def write_then_resync(reason):
        born.append(str(desks.create({"name": "x", "width": 1, "height": 1})["_id"]))
        log_resync(reason)

    def snapshot_then_delete(reason):
        marker = log_snapshot(reason)  # shows x
        if len(born) == 1:
            desks.delete(born[0], None)  # after the snapshot: logged as x's deletion
        return marker

    watcher._log_resync, watcher._log_snapshot = write_then_resync, snapshot_then_delete
    tail, tails = watcher._tail, []
    watcher._tail = lambda stop: tails.append(1) or tail(stop)
    service = Service("watcher", watcher.run)
    service.start()
    wait_until(lambda: [e.type for e in log_of(events)][-1:] == ["desk_deleted"])
    for _ in range(2):  # pymongo resumes once by itself; the second error reaches the watcher
        embedded.oplog.inject_fault(AutoReconnect("transient"))
    wait_until(lambda: len(tails) == 2 and watcher.healthy.is_set())
    # Read again from the snapshot: x's creation (before its deletion) is skipped again, not
    # logged after the deletion as a desk the store no longer has.
    desks.create({"name": "after", "width": 1, "height": 1})
    wait_until(lambda: getattr(log_of(events)[-1], "desk", {}).get("name") == "after")
    service.stop()
    assert [e.type for e in log_of(events)] == [
        "resync",
        "snapshot",
        "desk_snapshot",
        "desk_deleted",
        "desk_created",
    ]
    verdict = verify(store)
    assert verdict.agree, verdict.differences


def test_without_images_updates_are_marked_looked_up(store, events, desks, monkeypatch):
    # MongoDB < 6.0, or collMod refused: the watcher falls back to updateLookup, whose desk
    # may be later than the change; every update event says so.
    monkeypatch.setattr("watcher.stream._enable_images", lambda store: False)
    watcher = start(store, events)
    desk = desks.create({"name": "A", "width": 1, "height": 1})
    desks.update(str(desk["_id"]), {"width": 2}, None)
    wait_until(lambda: events.head() == 2)
    watcher.stop()
    created, updated = log_of(events)
    assert not hasattr(created, "looked_up") and updated.looked_up
    assert events.after(1, 1)[0].looked_up  # as the log keeps it and gives it back
    # And with images (the default here), not marked.
    monkeypatch.undo()
    again = start(store, events)
    desks.update(str(desk["_id"]), {"width": 3}, None)
    wait_until(lambda: events.head() == 3)
    again.stop()
    assert not events.after(2, 1)[0].looked_up


@pytest.mark.parametrize("existing", [True, False], ids=["turned on before", "never"])
def test_images_the_initialiser_turned_on_serve_a_user_who_may_not(existing, monkeypatch):
    # Compose's application user has readWrite only: collMod is refused. The images the
    # replica set's initialiser turned on are found by listing the collection (a read).
    store = open_store(Settings(embedded_path=":memory:"))
    if existing:
        store.database.create_collection("desks", changeStreamPreAndPostImages={"enabled": True})
    else:
        store.database.create_collection("desks")
    (listed,) = store.database.list_collections(filter={"name": "desks"})
    assert listed["name"] == "desks" and listed["type"] == "collection"

    def refused(*_args, **_kwargs):
        raise OperationFailure("not authorized on desks to execute command collMod", 13)

    monkeypatch.setattr(store.database, "command", refused)
    assert _enable_images(store) is existing
    store.close()
