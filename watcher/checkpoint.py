"""The watcher's checkpoint: the resume token to restart the change stream from."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pymongo.database import Database

from desks.desk import utc_now

Document = dict[str, Any]

CHECKPOINTS = "watcher_checkpoints"


class Checkpoint:
    """One saved resume token per watched collection, and whether a resync is owed.

    Saves are throttled to one per `interval` seconds: each is a write (and on MongoDB a
    majority commit), and the log's unique token index already makes a change read again
    after a crash harmless. A crash re-reads at most `interval` seconds of changes.
    """

    def __init__(
        self, database: Database[Document], name: str = "desks", interval: float = 1.0
    ) -> None:
        self._checkpoints = database[CHECKPOINTS]
        self._name = name
        self._interval = interval
        self._saved: Mapping[str, Any] | None = None
        self._pending: Mapping[str, Any] | None = None
        self._saved_at = float("-inf")
        self.resync_reason: str | None = None

    def load(self) -> Mapping[str, Any] | None:
        """Return the saved resume token (None: start from now); note any resync owed."""
        found = self._checkpoints.find_one({"_id": self._name}) or {}
        self._saved = found.get("resume_token")
        self._pending = None
        self.resync_reason = found.get("resync")
        return self._saved

    def save(self, token: Mapping[str, Any] | None, force: bool = False) -> None:
        """Save `token` now if forced or if `interval` has passed, else at the next chance."""
        if token is None or (token == self._saved and self.resync_reason is None):
            self._pending = None
            return
        if not force and time.monotonic() - self._saved_at < self._interval:
            self._pending = token
            return
        self._checkpoints.update_one(
            {"_id": self._name},
            {
                "$set": {"resume_token": dict(token), "saved_at": utc_now()},
                "$unset": {"resync": ""},
            },
            upsert=True,
        )
        self._saved, self._pending = token, None
        self._saved_at = time.monotonic()
        self.resync_reason = None

    def flush(self) -> None:
        """Save the token a throttled save left pending (on a clean stop)."""
        if self._pending is not None:
            self.save(self._pending, force=True)

    def start_over(self, reason: str) -> None:
        """Drop the token, so the next start begins from now, and owe clients a resync.

        The resync is stored with the checkpoint so a crash before it is logged cannot lose it.
        """
        self._checkpoints.update_one(
            {"_id": self._name},
            {"$set": {"resume_token": None, "resync": reason, "saved_at": utc_now()}},
            upsert=True,
        )
        self._saved, self._pending = None, None
        self.resync_reason = reason
