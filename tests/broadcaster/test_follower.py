"""The log follower: every event once, in order, whatever rings, fails or is replaced."""

from __future__ import annotations

import json
import threading

import pytest
from pymongo.errors import AutoReconnect

from broadcaster.follower import LogFollower, Window
from desks.event_log import EVENTS, META, EventLog
from desks.events import decode
from embedded import EmbeddedClient
from tests.broadcaster.test_server import event
from tests.conftest import wait_until

# Longer than any test waits: a follower that missed a ring would sit out this poll, and the
# test would fail at its deadline instead of passing late.
NEVER_MS = 120_000


class Receiver:
    """Takes what the follower hands over, as the broadcaster's loop does."""

    def __init__(self, hold: bool = False) -> None:
        self.updates: list = []
        self.hold = hold  # keep every slot: the follower must wait
        self.follower: LogFollower | None = None

    def __call__(self, update) -> None:
        self.updates.append(update)
        if not self.hold:
            assert self.follower is not None
            self.follower.taken()

    @property
    def seqs(self) -> list[int]:
        return [seq for update in self.updates for seq, _ in update.events]

    @property
    def windows(self) -> list[Window]:
        return [update for update in self.updates if isinstance(update, Window)]


def append(events: EventLog, *seqs: int) -> None:
    events.append_many([(decode(json.loads(event(seq))), f"token-{seq}") for seq in seqs])


def follow(events: EventLog, retain: int = 100, await_ms: int = NEVER_MS, hold: bool = False):
    receiver = Receiver(hold)
    follower = receiver.follower = LogFollower(events, retain, receiver, await_ms=await_ms)
    stop = threading.Event()
    thread = threading.Thread(target=follower.run, args=(stop,), daemon=True)
    thread.start()
    return receiver, follower, stop, thread


@pytest.fixture
def log():
    client = EmbeddedClient()
    events = EventLog(client["desks"])
    yield events
    client.close()


@pytest.fixture
def following(log):
    started = []

    def start(**options):
        receiver, follower, stop, thread = follow(log, **options)
        started.append((stop, thread))
        return receiver, follower

    yield start
    for stop, _ in started:
        stop.set()
    # A follower notices a stop at its next poll (NEVER_MS away): a closed store ends the poll.
    log._events.database.client.close()
    for _, thread in started:
        thread.join(10)
        assert not thread.is_alive()


def test_it_hands_over_the_newest_window_then_every_append_in_order(log, following):
    epoch = log.epoch()
    append(log, *range(1, 31))
    receiver, _ = following(retain=20)
    wait_until(lambda: receiver.seqs == list(range(11, 31)))
    assert [(w.epoch, w.after, w.head) for w in receiver.windows] == [(epoch, 10, 30)]
    for first, size in ((31, 1), (32, 7), (39, 600), (639, 2)):  # one write each
        append(log, *range(first, first + size))
    wait_until(lambda: receiver.seqs[-1:] == [640])
    assert receiver.seqs == list(range(11, 641))


def test_it_waits_for_a_log_to_be_started(log, following):
    receiver, follower = following()
    append(log, 1)  # an event before the log has an epoch: not a log to follow yet
    log.epoch()
    wait_until(lambda: receiver.seqs == [1])
    assert follower.failure is None


def test_an_append_committed_between_an_empty_read_and_the_wait_still_wakes_it(log, following):
    """The interleaving a follower must survive: it finds nothing, the watcher appends, then
    the follower waits. The stream it waits on was opened before that read, so it rings."""
    log.epoch()
    read = log.after_encoded
    raced = threading.Event()

    def after_then_append(seq, limit):
        found = read(seq, limit)
        if not found and seq == 1 and not raced.is_set():
            raced.set()
            append(log, 2)  # committed after the read saw nothing, before the wait
        return found

    log.after_encoded = after_then_append  # type: ignore[method-assign]
    append(log, 1)
    receiver, _ = following(await_ms=NEVER_MS)
    wait_until(lambda: receiver.seqs == [1, 2], timeout=20)
    assert raced.is_set()


def test_a_dropped_log_is_never_served_as_the_old_one_while_its_identity_lingers(log, following):
    """The store wiped one collection at a time: the log's first, its identity after. The new
    log's seqs pass the old position before its identity is replaced, and must not be read
    as the old log's next events."""
    log.epoch()
    append(log, 1, 2, 3)
    receiver, follower = following(await_ms=100)
    wait_until(lambda: receiver.seqs == [1, 2, 3])
    log._events.database.drop_collection(EVENTS)
    wait_until(lambda: follower._dropped is not None)  # its stream ended: it noticed
    append(log, 1, 2, 3, 4, 5)  # the new log, under the old identity for now
    log._meta.replace_one({"_id": "log"}, {"_id": "log", "epoch": "new"})
    wait_until(lambda: len(receiver.windows) == 2 and receiver.seqs[-1:] == [5])
    assert receiver.windows[1].epoch == "new"
    assert receiver.seqs == [1, 2, 3, 1, 2, 3, 4, 5]  # none of the new log as the old's


def test_a_log_replaced_identity_first_is_followed_from_its_start(log, following):
    log.epoch()
    append(log, 1, 2, 3)
    receiver, _ = following(await_ms=100)
    wait_until(lambda: receiver.seqs == [1, 2, 3])
    database = log._events.database
    database.drop_collection(META)
    database.drop_collection(EVENTS)
    new = log.epoch()
    append(log, 1, 2, 3, 4, 5, 6)
    wait_until(lambda: len(receiver.windows) == 2 and receiver.seqs[-1:] == [6])
    assert receiver.windows[1].epoch == new
    assert receiver.seqs == [1, 2, 3, 1, 2, 3, 4, 5, 6]


def test_an_event_this_version_cannot_read_is_passed_on_not_held_up(log, following):
    log.epoch()
    append(log, 1)
    newer = {"_id": 2, "token": "token-2", "type": "desk_archived", "at": "2026-12-06T00:00:00Z"}
    log._events.insert_one(newer)  # a newer watcher's type, during a rolling upgrade
    append(log, 3)
    receiver, follower = following()
    wait_until(lambda: receiver.seqs == [1, 2, 3])
    texts = [text for update in receiver.updates for _, text in update.events]
    assert json.loads(texts[1]) == {"seq": 2, "type": "desk_archived", "at": newer["at"]}
    assert follower.failure is None


def test_a_failing_store_is_said_and_retried_and_nothing_is_lost(log, following):
    log.epoch()
    receiver, follower = following(await_ms=100)
    wait_until(lambda: receiver.windows)
    oplog = log._events.database.client.oplog

    def failing() -> bool:
        # pymongo resumes once by itself: a pair of faults reaches the follower. Injected
        # until seen: a retry that reads again ends the failure, however short it was.
        for _ in range(2):
            oplog.inject_fault(AutoReconnect("store unreachable"))
        return follower.failure == "AutoReconnect"

    wait_until(failing)
    append(log, 1, 2, 3)
    wait_until(lambda: receiver.seqs == [1, 2, 3])
    wait_until(lambda: follower.failure is None)
    append(log, 4)
    wait_until(lambda: receiver.seqs == [1, 2, 3, 4])
    assert len(receiver.windows) == 1  # the same log, resumed where it was


def test_it_stops_while_the_receiver_holds_every_slot(log):
    log.epoch()
    append(log, *range(1, 2001))  # more reads than slots
    receiver, follower, stop, thread = follow(log, retain=2000, hold=True)
    wait_until(lambda: len(receiver.updates) == 2)  # IN_FLIGHT: then it waits for a slot
    assert thread.is_alive()
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert follower.failure is None
