"""A reentrant lock granted in arrival order: the queue of one process's writers."""

from __future__ import annotations

import threading
from collections import deque


class FairLock:
    """A reentrant lock granted in arrival order.

    threading.RLock lets a thread that just released it take it straight back, so a writer
    in a loop (API threads under load) can starve another (the watcher) for as long as the
    load lasts. Here each waiter gets its own gate and the owner hands over to the oldest.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiting: deque[tuple[int, threading.Lock]] = deque()
        self._owner: int | None = None
        self._depth = 0

    def __enter__(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._waiting.append((me, gate))
        gate.acquire()  # released by the owner that hands the lock over to us

    def __exit__(self, *_exc: object) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if self._waiting:
                self._owner, gate = self._waiting.popleft()
                self._depth = 1
                gate.release()
            else:
                self._owner = None
