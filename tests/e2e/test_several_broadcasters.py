"""Several broadcasters following one event log: each serves the same ordered stream."""

from __future__ import annotations

import threading

from broadcaster.server import Broadcaster
from desks.event_log import EventLog
from tests.broadcaster.test_server import serving
from tests.conftest import wait_until
from tests.e2e.conftest import http


def test_every_broadcaster_serves_the_same_stream(system, listen):
    # A second broadcaster on the same store, as another process on the file would be: it
    # needs nothing but the log (no list of broadcasters, no token).
    extra = Broadcaster(EventLog(system.store.database))
    stop, thread = serving(extra)
    try:
        first = listen(system.broadcaster_url)
        second = listen(f"ws://127.0.0.1:{extra.port}/")
        assert first.next()["type"] == second.next()["type"] == "hello"
        for n in range(20):
            http("POST", f"{system.api_url}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
        one, two = first.events(20), second.events(20)
        assert [e["seq"] for e in one] == list(range(1, 21))
        assert one == two
    finally:
        stop.set()
        thread.join(10)


def test_a_broadcaster_started_late_serves_what_was_logged_before_it(system, listen):
    for n in range(5):
        http("POST", f"{system.api_url}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
    wait_until(lambda: system.broadcaster_server.history.head == 5)
    first = listen(f"{system.broadcaster_url}?after=0")
    hello = first.next()
    assert hello["head"] == 5
    logged = first.events(5)
    late = Broadcaster(EventLog(system.store.database))
    stop, thread = serving(late)
    try:
        second = listen(f"ws://127.0.0.1:{late.port}/?after=2")
        assert second.next() == hello  # the same log, at the same head
        assert second.events(3) == logged[2:]
        http("POST", f"{system.api_url}/api/desks", {"name": "D5", "width": 1, "height": 1})
        assert first.events(1) == second.events(1)
    finally:
        stop.set()
        thread.join(10)


def test_a_stopped_broadcaster_leaves_no_thread_reading_the_log(system):
    def following():
        return sum(1 for t in threading.enumerate() if t.name == "broadcaster-log")

    before = following()  # the system's own broadcaster's
    extra = Broadcaster(EventLog(system.store.database))
    stop, thread = serving(extra)
    assert following() == before + 1
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert following() == before
