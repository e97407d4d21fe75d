"""A change stream read in its own thread, so the watcher logs whatever has arrived in one write.

pymongo's `try_next()` cannot say whether the next change is already here or would block for
`max_await_time_ms`; read in a thread into a bounded queue, the watcher takes everything that
has arrived without ever waiting on a change that has not, and logs it as one batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

# A slow log holds the reader back here rather than letting changes pile up in memory.
CAPACITY = 2000


class Stream(Protocol):
    """The part of pymongo's ChangeStream the feed uses."""

    @property
    def alive(self) -> bool: ...

    @property
    def resume_token(self) -> Mapping[str, Any] | None: ...

    def try_next(self) -> Mapping[str, Any] | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Item:
    """One poll of the stream: a change (None after an empty poll) and the token after it."""

    change: Mapping[str, Any] | None
    token: Mapping[str, Any] | None


class _Ended:
    """The stream ended without an error: it was invalidated."""


@dataclass(frozen=True)
class _Failed:
    error: Exception


class ChangeFeed:
    """Poll `stream` in a thread until closed; hand over everything read so far, in order."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._queue: queue.Queue[Item | _Ended | _Failed] = queue.Queue(CAPACITY)
        self._closing = threading.Event()
        self._held: _Ended | _Failed | None = None
        self.ended = False
        self._thread = threading.Thread(target=self._read, name="watcher-stream", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while not self._closing.is_set() and self._stream.alive:
                change = self._stream.try_next()
                self._put(Item(change, self._stream.resume_token))
            if not self._closing.is_set():
                self._put(_Ended())
        except Exception as error:  # handed to the watcher, whose loop decides what it means
            self._put(_Failed(error))
        finally:
            self._stream.close()  # here: pymongo's cursors belong to the thread using them

    def _put(self, item: Item | _Ended | _Failed) -> None:
        while not self._closing.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self, timeout: float, limit: int) -> list[Item]:
        """Return up to `limit` items, waiting up to `timeout` for the first; raise a read error.

        Items read before an error or the end are returned first; the next call raises the
        error or sets `ended`.
        """
        items: list[Item] = []
        if self._held is None:
            try:
                first = self._queue.get(timeout=timeout)
            except queue.Empty:
                return items
            pending: list[Item | _Ended | _Failed] = [first]
            while len(pending) < limit:
                try:
                    pending.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for entry in pending:
                if not isinstance(entry, Item):
                    self._held = entry
                    break
                items.append(entry)
            if items:
                return items
        held, self._held = self._held, None
        if isinstance(held, _Failed):
            raise held.error
        self.ended = True
        return items

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading; the reader ends after its current poll (at most max_await_time_ms)."""
        self._closing.set()
        self._thread.join(timeout)

    def __enter__(self) -> ChangeFeed:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
