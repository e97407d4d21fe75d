"""Feed one broadcaster from the event log over an authenticated WebSocket.

The log, not memory, is the source: on every (re)connection the broadcaster says which seq it
has, and the publisher sends everything after it, so a broadcaster that was down or restarted
misses nothing and gets nothing twice.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable

from pymongo.errors import PyMongoError
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect

from desks.backoff import Backoff
from desks.event_log import EventLog
from desks.service import STOP_TIMEOUT
from watcher import metrics

log = logging.getLogger("desks.publisher")

BATCH = 500
# How often a standby's publisher looks whether its watcher took the lease over.
LEADERSHIP_POLL = 0.1
PUBLISH_PATH = "publish"
# How long a broadcaster may take to answer (connect, or say where it stands) before a retry:
# under the time a service gets to stop, so that stopping never waits on a silent broadcaster.
ANSWER_TIMEOUT = STOP_TIMEOUT - 1.5  # and close_timeout=1: 3.5 s at most


def publish_url(broadcaster_url: str) -> str:
    """Return the publisher endpoint of a broadcaster given by its client URL."""
    base = broadcaster_url.split("?", 1)[0]
    return base.rstrip("/") + "/" + PUBLISH_PATH


class Publisher:
    """Send the event log to one broadcaster, in order, resuming where the broadcaster stands."""

    def __init__(
        self,
        broadcaster_url: str,
        token: str,
        events: EventLog,
        backoff: Backoff | None = None,
        idle_wait: float = 0.5,
        may_publish: Callable[[], bool] = lambda: True,
    ) -> None:
        self.url = publish_url(broadcaster_url)
        self._token = token
        self._events = events
        self._backoff = backoff or Backoff()
        self._idle_wait = idle_wait
        # Only the lease holder publishes: a standby's publisher would evict the active one's
        # from the broadcaster (the newest publisher wins) and the two would take turns.
        self._may_publish = may_publish
        self.connected = threading.Event()
        self.position: int | None = None  # the last seq the broadcaster has, while connected
        metrics.PUBLISHER_LAG.labels(self.url).set_function(self.lag)

    def lag(self) -> float:
        """Return how many logged events the broadcaster lacks (NaN while not connected)."""
        position = self.position
        if position is None:
            return float("nan")
        try:
            return float(max(0, self._events.head() - position))
        except PyMongoError:
            return float("nan")

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set, reconnecting with capped exponential backoff."""
        while not stop.is_set():
            if not self._may_publish():
                stop.wait(LEADERSHIP_POLL)
                continue
            try:
                epoch = self._events.epoch()  # a store call too: under the same retry rule
                with connect(
                    self.url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    open_timeout=ANSWER_TIMEOUT,
                    close_timeout=1,
                    compression=None,
                ) as connection:
                    self._publish(connection, epoch, stop)
            except Exception as error:  # one rule for long-running loops: log, back off, go on
                self._disconnected()
                if stop.is_set():
                    break  # shutting down alongside the broadcaster: nothing to report
                delay = self._backoff.next()
                expected = (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI)
                log.warning(
                    "publishing failed; retrying",
                    extra={"url": self.url, "error": repr(error), "retry_in_s": round(delay, 2)},
                    exc_info=not isinstance(error, expected),
                )
                stop.wait(delay)
            else:
                self._disconnected()
        self._disconnected()

    def _disconnected(self) -> None:
        self.connected.clear()
        self.position = None

    def _publish(self, connection: ClientConnection, epoch: str, stop: threading.Event) -> None:
        ready = json.loads(connection.recv(timeout=ANSWER_TIMEOUT))
        position = self._start(connection, ready, epoch)
        self.position = position
        self.connected.set()
        self._backoff.reset()
        log.info("publishing", extra={"url": self.url, "after_seq": position})
        while not stop.is_set():
            if not self._may_publish():
                log.info("lease lost; publishing stopped", extra={"url": self.url})
                return
            batch = self._events.after(position, BATCH)
            for event in batch:
                connection.send(event.encode())
                position = self.position = event.seq
            if not batch:
                self._events.wait(self._idle_wait)
                connection.ping()  # notice a dead broadcaster while idle, not at the next event

    def _start(self, connection: ClientConnection, ready: dict[str, object], epoch: str) -> int:
        head = self._events.head()
        their_head = ready.get("head")
        if ready.get("epoch") == epoch and isinstance(their_head, int) and 0 <= their_head <= head:
            return their_head
        # A broadcaster that knows another log (or none): give it the newest window it retains.
        retain = ready.get("retain")
        after = max(0, head - retain) if isinstance(retain, int) else head
        message = {"type": "log", "epoch": epoch, "after": after, "head": head}
        connection.send(json.dumps(message))
        return after
