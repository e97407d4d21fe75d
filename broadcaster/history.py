"""Retained events, so a client reconnecting with `after=<seq>` gets exactly what it missed."""

from __future__ import annotations

from collections import deque


class SequenceGap(Exception):
    """An event arrived that does not follow the last one retained."""


class History:
    """The newest `retain` events of one log (identified by its epoch), as encoded text."""

    def __init__(self, retain: int) -> None:
        self.retain = retain
        self.epoch: str | None = None
        self.head = 0
        self._events: deque[str] = deque(maxlen=retain)

    @property
    def first(self) -> int:
        """Return the oldest retained seq (head + 1 when none is retained)."""
        return self.head - len(self._events) + 1

    def start(self, epoch: str, after: int) -> None:
        """Follow log `epoch` from seq `after` on, forgetting what was retained."""
        self.epoch = epoch
        self.head = after
        self._events.clear()

    def add(self, seq: int, text: str) -> bool:
        """Retain the event; False if it is a repeat, SequenceGap if events are missing."""
        if seq <= self.head:
            return False
        if seq != self.head + 1:
            raise SequenceGap(f"expected seq {self.head + 1}, got {seq}")
        self._events.append(text)
        self.head = seq
        return True

    def since(self, after: int, epoch: str | None = None) -> list[str] | None:
        """Return the events after `after`, or None when that position cannot be served.

        None means: `after` belongs to another log, is newer than the head (a previous log),
        or is older than what is retained. The client must reload its snapshot.
        """
        if epoch is not None and epoch != self.epoch:
            return None
        if after > self.head or after < self.first - 1:
            return None
        start = after - self.first + 1
        return [self._events[i] for i in range(start, len(self._events))]
