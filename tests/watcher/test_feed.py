"""The change feed: what has arrived, in order, in one take; errors and the end after it."""

from __future__ import annotations

import pytest
from pymongo.errors import OperationFailure

from api.repository import DeskRepository
from desks.event_log import EventLog
from desks.service import Service
from tests.conftest import wait_until
from watcher.checkpoint import Checkpoint
from watcher.feed import ChangeFeed
from watcher.stream import Watcher


class ScriptedStream:
    """A change stream that returns a script of changes, then fails or ends."""

    def __init__(self, script):
        self._script = list(script)
        self.alive = True
        self.resume_token = {"_data": "00"}
        self.closed = False

    def try_next(self):
        if not self._script:
            self.alive = False
            return None
        step = self._script.pop(0)
        if isinstance(step, Exception):
            raise step
        self.resume_token = {"_data": f"{step:02X}"}
        return {"n": step}

    def close(self):
        self.closed = True


def take_all(feed, count):
    items = []
    wait_until(lambda: items.extend(feed.take(0.05, 1000)) or len(items) >= count)
    return items


def test_feed_hands_over_changes_in_order_with_the_token_after_each():
    stream = ScriptedStream([1, 2, 3])
    with ChangeFeed(stream) as feed:
        items = take_all(feed, 3)[:3]
    assert [item.change["n"] for item in items] == [1, 2, 3]
    assert [item.token["_data"] for item in items] == ["01", "02", "03"]


def test_feed_raises_a_read_error_after_the_changes_read_before_it():
    stream = ScriptedStream([1, 2, OperationFailure("boom", 286)])
    with ChangeFeed(stream) as feed:
        items = take_all(feed, 2)
        with pytest.raises(OperationFailure):
            wait_until(lambda: feed.take(0.05, 1000) or None)
    assert [item.change["n"] for item in items] == [1, 2]
    assert stream.closed


def test_feed_reports_a_stream_that_ended_without_an_error():
    stream = ScriptedStream([1])
    with ChangeFeed(stream) as feed:
        take_all(feed, 1)
        wait_until(lambda: feed.take(0.05, 1000) == [] and feed.ended)


def test_watcher_logs_a_backlog_in_a_few_writes_not_one_per_change(store, monkeypatch):
    with store.desks.watch() as stream:
        Checkpoint(store.database).save(stream.resume_token)
    desks = DeskRepository(store.desks)
    for n in range(400):
        desks.create({"name": f"D{n}", "width": 1, "height": 1})
    events = EventLog(store.database)
    writes = []
    append_many = events.append_many
    monkeypatch.setattr(
        events, "append_many", lambda batch: writes.append(len(batch)) or append_many(batch)
    )
    service = Service("watcher", Watcher(store, events, Checkpoint(store.database), 50).run)
    service.start()
    wait_until(lambda: events.head() == 400)
    service.stop()
    assert sum(writes) == 400
    assert len(writes) <= 40
    assert [e.seq for e in events.after(0, 1000)] == list(range(1, 401))
