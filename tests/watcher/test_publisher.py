"""The publisher: under the retry rule from its first store call, and silent unless leading."""

from __future__ import annotations

import contextlib
import threading

from pymongo.errors import AutoReconnect

from broadcaster.server import Broadcaster
from desks.backoff import Backoff
from desks.event_log import EventLog
from desks.events import DeskCreated
from desks.service import Service
from tests.broadcaster.test_server import running
from tests.conftest import wait_until
from watcher.publisher import Publisher

TOKEN = "s3cret"


class FlakyLog(EventLog):
    """An event log whose store is unreachable for the first `failures` calls to epoch()."""

    def __init__(self, database, failures: int) -> None:
        super().__init__(database)
        self.failures = failures

    def epoch(self) -> str:
        if self.failures > 0:
            self.failures -= 1
            raise AutoReconnect("connection refused")
        return super().epoch()


def append(events, seq):
    desk = {"id": f"{seq:024x}", "name": f"D{seq}", "width": 1, "height": 1, "version": 1}
    created = DeskCreated(seq, "2026-11-28T14:30:45.000Z", desk["id"], 1, desk)
    events.append(created, f"token-{seq}")


@contextlib.contextmanager
def publishing(publisher):
    service = Service("publisher", publisher.run)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def test_a_store_unreachable_at_start_is_retried_not_fatal(store):
    events = FlakyLog(store.database, failures=3)
    append(events, 1)
    with running(Broadcaster(TOKEN)) as (broadcaster, url):
        publisher = Publisher(url, TOKEN, events, Backoff(0.01, 0.05))
        with publishing(publisher) as service:
            wait_until(lambda: broadcaster.history.head == 1)
            assert service.running and events.failures == 0
            append(events, 2)
            wait_until(lambda: broadcaster.history.head == 2)


def test_only_a_leader_publishes(store):
    events = EventLog(store.database)
    append(events, 1)
    leading = threading.Event()
    with running(Broadcaster(TOKEN)) as (broadcaster, url):
        publisher = Publisher(url, TOKEN, events, may_publish=leading.is_set)
        with publishing(publisher):
            assert not publisher.connected.wait(0.5)  # a standby: never connects
            assert broadcaster.history.head == 0
            leading.set()
            wait_until(lambda: broadcaster.history.head == 1)
            assert publisher.position == 1
            leading.clear()  # the lease went elsewhere: disconnect, publish nothing more
            wait_until(lambda: not publisher.connected.is_set())
            append(events, 2)
            assert not publisher.connected.wait(0.5)
            assert broadcaster.history.head == 1 and publisher.position is None


def test_a_service_that_crashes_or_ends_unasked_reports_it():
    crashes = []

    def explode(stop):
        raise RuntimeError("bug")

    for run in (explode, lambda stop: None):
        service = Service("doomed", run, on_crash=lambda: crashes.append(1))
        service.start()
        wait_until(lambda s=service: not s.running)
    assert crashes == [1, 1]
    asked = Service("polite", lambda stop: stop.wait(), on_crash=lambda: crashes.append(1))
    asked.start()
    asked.stop()
    assert crashes == [1, 1]
