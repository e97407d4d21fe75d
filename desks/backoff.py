"""Capped exponential backoff with jitter, for every reconnect loop."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from `initial` up to `cap`, with full jitter against thundering herds."""

    def __init__(self, initial: float = 0.1, cap: float = 10.0) -> None:
        self.initial = initial
        self.cap = cap
        self._attempt = 0

    def next(self) -> float:
        """Return the next delay in seconds."""
        ceiling = min(self.cap, self.initial * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from the shortest delay (after a success)."""
        self._attempt = 0
