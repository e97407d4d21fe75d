"""The registry as of any seq, read through the log's indexes, equals a plain fold of the log."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desks import event_log
from desks.event_log import EventLog
from desks.events import (
    DeskCreated,
    DeskDeleted,
    DeskSnapshot,
    DeskUpdated,
    Event,
    Resync,
    Snapshot,
)
from desks.settings import Settings
from desks.store import open_store

AT = "2026-11-30T12:00:00.000Z"
NAMES = ["Mesa", "mesa grande", "Otra", "Banco"]

writes = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(NAMES)),
    st.tuples(st.just("update"), st.integers(0, 20), st.sampled_from(NAMES)),
    st.tuples(st.just("delete"), st.integers(0, 20)),
)
# One step of a desk registry's life: create, rename, delete (by index among the live desks),
# or lose history: a resync, then a snapshot of the live desks, with writes made between the
# new stream opening and the snapshot reading them (the snapshot shows them, and the stream
# brings them after it).
steps = st.lists(
    st.one_of(writes, st.tuples(st.just("resync"), st.lists(writes, max_size=6))),
    max_size=40,
)


def desk(number: int, name: str, version: int) -> dict:
    return {"id": f"{number:024x}", "name": name, "version": version, "created_at": AT}


def history(plan: list[tuple]) -> list[Event]:
    """Return the events of `plan`, as the watcher would log them."""
    live: dict[str, dict] = {}
    events: list[Event] = []
    shown: dict[str, int] = {}  # desks the log holds, at which version: the watcher's check
    numbers = iter(range(1, 10_000))

    def seq() -> int:
        return len(events) + 1

    def write(step: tuple) -> Event | None:
        """Apply one write to the store; return the change event it makes, if any."""
        if step[0] == "create":
            new = desk(next(numbers), step[1], 1)
            live[new["id"]] = new
            return DeskCreated(0, AT, new["id"], 1, new)
        if step[0] == "update" and live:
            old = list(live.values())[step[1] % len(live)]
            new = {**old, "name": step[2], "version": old["version"] + 1}
            live[new["id"]] = new
            return DeskUpdated(0, AT, new["id"], new["version"], new)
        if step[0] == "delete" and live:
            old = live.pop(list(live)[step[1] % len(live)])
            return DeskDeleted(0, AT, old["id"], old["version"], old)
        return None

    def log(change: Event) -> None:
        events.append(replace(change, seq=seq()))
        if change.type == "desk_deleted":
            shown.pop(change.desk_id, None)
        else:
            shown[change.desk_id] = change.version

    def shows_already(change: Event) -> bool:
        """The watcher's settling rule (watcher/settling.py)."""
        if change.type == "desk_created":
            return change.desk_id in shown
        if change.desk_id not in shown:
            return True
        return change.type == "desk_updated" and change.version <= shown[change.desk_id]

    for step in plan:
        if step[0] != "resync":
            if (change := write(step)) is not None:
                log(change)
            continue
        events.append(Resync(seq(), AT))
        during = [change for change in map(write, step[1]) if change is not None]
        events.append(Snapshot(seq(), AT))
        shown.clear()
        for kept in live.values():
            log(DeskSnapshot(0, AT, kept["id"], kept["version"], kept))
        for change in during:  # skipped when the snapshot shows them already
            if not shows_already(change):
                log(change)
    return events


def fold(events: list[Event], seq: int) -> list[dict]:
    """Return the desks right after `seq`, in the order they entered the log: the oracle."""
    state: dict[str, dict] = {}
    for event in events[:seq]:
        if event.type == "snapshot":
            state = {}
        elif event.type in ("desk_created", "desk_snapshot", "desk_updated"):
            state[event.desk_id] = event.desk
        elif event.type == "desk_deleted":
            state.pop(event.desk_id, None)
    return list(state.values())


@pytest.fixture(scope="module")
def store():
    opened = open_store(Settings(embedded_path=":memory:"))
    yield opened
    opened.close()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=steps, batch=st.sampled_from([1, 2, 500]), page=st.integers(1, 3))
def test_as_of_every_seq_is_the_fold_of_the_log(store, monkeypatch, plan, batch, page):
    store.database.drop_collection("desk_events")
    log = EventLog(store.database)
    log.ensure_indexes()
    events = history(plan)
    if events:
        log.append_many([(event, f"t{event.seq}") for event in events])
    with monkeypatch.context() as patched:  # undone after each example
        patched.setattr(event_log, "AS_OF_BATCH", batch)
        for seq in range(len(events) + 1):
            if log.unknown_state(seq) is not None:
                continue
            expected = fold(events, seq)
            assert [json.loads(d) for d in log.registry(seq, json.dumps)] == expected
            size = 2
            assert log.as_of(seq, None, (page - 1) * size, size)[:2] == (
                expected[(page - 1) * size : page * size],
                len(expected),
            )
            named = [d for d in expected if "mesa" in d["name"].lower()]
            assert log.as_of(seq, "MESA", 0, 100)[:2] == (named, len(named))
            # Cursor by cursor, every desk once, in order, each page telling the same total.
            for name, wanted in ((None, expected), ("MESA", named)):
                walked: list[dict] = []
                after = None
                for _ in range(len(wanted) + 1):
                    desks, total, after = log.as_of(seq, name, 0, page, after)
                    assert total == len(wanted)
                    walked += desks
                    if after is None:
                        break
                assert walked == wanted


def test_a_registry_total_counted_once_stays_true_as_the_log_grows(store):
    store.database.drop_collection("desk_events")
    log = EventLog(store.database)
    log.ensure_indexes()
    first, second = desk(1, "Mesa", 1), desk(2, "Otra", 1)
    log.append(DeskCreated(seq=1, at=AT, desk_id=first["id"], version=1, desk=first), "t1")
    log.append(DeskCreated(seq=2, at=AT, desk_id=second["id"], version=1, desk=second), "t2")
    assert log.as_of(2, None, 0, 1, after=0).total == 2
    log.append(DeskDeleted(seq=3, at=AT, desk_id=first["id"], version=1, desk=first), "t3")
    assert log.as_of(2, None, 0, 1, after=0).total == 2  # counted once for seq 2
    assert log.as_of(3, None, 0, 1, after=0).total == 1
    assert log.as_of(3, None, 0, 1).total == 1
