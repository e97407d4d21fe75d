"""The watcher's checkpoint: the resume token to restart the change stream from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.database import Database

from desks.desk import utc_now

Document = dict[str, Any]

CHECKPOINTS = "watcher_checkpoints"


class Checkpoint:
    """One saved resume token per watched collection, and whether a resync is owed."""

    def __init__(self, database: Database[Document], name: str = "desks") -> None:
        self._checkpoints = database[CHECKPOINTS]
        self._name = name
        self._saved: Mapping[str, Any] | None = None
        self.resync_reason: str | None = None

    def load(self) -> Mapping[str, Any] | None:
        """Return the saved resume token (None: start from now); note any resync owed."""
        found = self._checkpoints.find_one({"_id": self._name}) or {}
        self._saved = found.get("resume_token")
        self.resync_reason = found.get("resync")
        return self._saved

    def save(self, token: Mapping[str, Any] | None) -> None:
        """Save `token` unless it is the one already saved (idle polls repeat it)."""
        if token is None or (token == self._saved and self.resync_reason is None):
            return
        self._checkpoints.update_one(
            {"_id": self._name},
            {
                "$set": {"resume_token": dict(token), "saved_at": utc_now()},
                "$unset": {"resync": ""},
            },
            upsert=True,
        )
        self._saved = token
        self.resync_reason = None

    def start_over(self, reason: str) -> None:
        """Drop the token, so the next start begins from now, and owe clients a resync.

        The resync is stored with the checkpoint so a crash before it is logged cannot lose it.
        """
        self._checkpoints.update_one(
            {"_id": self._name},
            {"$set": {"resume_token": None, "resync": reason, "saved_at": utc_now()}},
            upsert=True,
        )
        self._saved = None
        self.resync_reason = reason
