"""Follow the event log: read it by seq, woken by a change stream on it, in a thread.

The log is the bus. A follower needs only the store: it reads every event after the last one
it has, in seq order, and between reads waits on a change stream of the log's inserts (on the
embedded store, woken by commits of any process on the file). The stream only rings; what is
delivered is always read from the log by seq, so a missed, repeated or reordered ring, or a
stream that had to be reopened, can neither lose nor repeat an event.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pymongo.errors import PyMongoError

from desks.backoff import Backoff
from desks.event_log import EventLog

log = logging.getLogger("desks.follower")

BATCH = 500
# One poll of the change stream waits this long for a ring (maxAwaitTimeMS); an idle follower
# also notices this often that it is asked to stop.
AWAIT_MS = 500
# How often the follower checks that the log is still the one it follows (its epoch), so that
# a replaced log is noticed even while events keep coming.
EPOCH_CHECK_SECONDS = 1.0
# Reads handed to the event loop and not yet taken: a loop busy fanning out holds the reader
# back instead of letting reads pile up in memory.
IN_FLIGHT = 2

Encoded = tuple[int, str]  # (seq, the event's JSON as clients get it)


@dataclass(frozen=True)
class Window:
    """A log to follow from now on: serve it from `after`, events up to `head` are coming."""

    epoch: str
    after: int
    head: int
    events: list[Encoded]


@dataclass(frozen=True)
class Batch:
    """The next events of the log being followed, in order, without a gap."""

    events: list[Encoded]


Update = Window | Batch


class LogFollower:
    """Read the log after what was handed over, and hand each read to `hand_over`, in order.

    `hand_over` runs in this thread and must pass the update on (e.g. to an event loop); the
    receiver calls `taken()` once it has applied it.
    """

    def __init__(
        self,
        events: EventLog,
        retain: int,
        hand_over: Callable[[Update], object],
        backoff: Backoff | None = None,
        await_ms: int = AWAIT_MS,
    ) -> None:
        self._events = events
        self._retain = retain
        self._hand_over = hand_over
        self._backoff = backoff or Backoff()
        self._await_ms = await_ms
        self._slots = threading.Semaphore(IN_FLIGHT)
        self.epoch: str | None = None  # the log handed over, and the last seq handed over
        self.position = 0
        # A log whose collection was dropped: never served again, whatever its identity
        # still says while it is being replaced (a new log starts again at seq 1).
        self._dropped: str | None = None
        # Why the last read of the log failed, until one succeeds (/readyz says 503 meanwhile).
        self.failure: str | None = None

    def taken(self) -> None:
        """Say that an update was applied (called by the receiver, from any thread)."""
        self._slots.release()

    def run(self, stop: threading.Event) -> None:
        """Follow the log until `stop` is set, retrying with backoff when the store fails."""
        while not stop.is_set():
            try:
                self._follow(stop)
            except Exception as error:  # one rule for long-running loops: log, back off, go on
                if stop.is_set():
                    break
                self.failure = type(error).__name__
                delay = self._backoff.next()
                log.warning(
                    "event log unreadable; retrying",
                    extra={"error": repr(error), "retry_in_s": round(delay, 2)},
                    exc_info=not isinstance(error, PyMongoError),
                )
                stop.wait(delay)

    def _follow(self, stop: threading.Event) -> None:
        """Follow one log until it is replaced or the stream ends; raise what the store raises."""
        # Opened before the first read: every append after that read rings.
        with self._events.watch(self._await_ms) as stream:
            epoch = self._events.existing_epoch()
            if epoch is None or epoch == self._dropped:  # no log (yet, or again)
                self._await_log(stop)
                return  # and start over: the stream first, then the reads
            if epoch != self.epoch:
                self._start(epoch, stop)
            check_epoch_at = time.monotonic() + EPOCH_CHECK_SECONDS
            while not stop.is_set():
                batch = self._events.after_encoded(self.position, BATCH)
                self._readable()
                if batch:
                    self._hand(Batch(batch), stop)
                    self.position = batch[-1][0]
                elif not self._await_ring(stream):
                    # The stream ended: the log's collection was dropped (or renamed). Its
                    # seqs now name other events: wait for the log that replaces it.
                    self._dropped = self.epoch
                    log.warning("event log dropped; waiting for a new one", extra={"epoch": epoch})
                    return
                if time.monotonic() >= check_epoch_at:
                    if self._events.existing_epoch() != self.epoch:
                        return
                    check_epoch_at = time.monotonic() + EPOCH_CHECK_SECONDS

    def _await_log(self, stop: threading.Event) -> None:
        """Wait until a log has an identity (the watcher makes it as it starts), told at once."""
        with self._events.watch_identity(self._await_ms) as stream:
            while not stop.is_set() and self._events.existing_epoch() in (None, self._dropped):
                self._readable()
                stream.try_next()

    def _await_ring(self, stream: Any) -> bool:
        """Wait for an append beyond the position (one poll); False if the stream ended."""
        while True:
            change = stream.try_next()
            if change is None:
                return bool(stream.alive)
            seq = (change.get("documentKey") or {}).get("_id")
            # A ring for an event already read (its batch was read whole) needs no read.
            if not isinstance(seq, int) or seq > self.position:
                return True

    def _start(self, epoch: str, stop: threading.Event) -> None:
        """Hand over the newest window of a log not followed before (or replaced)."""
        head = self._events.head()
        after = max(0, head - self._retain)
        first = self._events.after_encoded(after, BATCH)
        self._readable()
        self._hand(Window(epoch, after, head, first), stop)
        self.epoch = epoch
        self.position = first[-1][0] if first else after
        log.info("following log", extra={"epoch": epoch, "after_seq": after, "head_seq": head})

    def _hand(self, update: Update, stop: threading.Event) -> None:
        while not self._slots.acquire(timeout=0.1):
            if stop.is_set():
                raise _Stopped
        self._hand_over(update)

    def _readable(self) -> None:
        if self.failure is not None:
            self.failure = None
            self._backoff.reset()
            log.info("event log readable again", extra={"after_seq": self.position})


class _Stopped(Exception):
    """Asked to stop while the receiver held every slot."""
