"""The watcher's checkpoint: the resume token to restart the change stream from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.database import Database

from desks.desk import utc_now

Document = dict[str, Any]

CHECKPOINTS = "watcher_checkpoints"


class Checkpoint:
    """One saved resume token per watched collection."""

    def __init__(self, database: Database[Document], name: str = "desks") -> None:
        self._checkpoints = database[CHECKPOINTS]
        self._name = name
        self._saved: Mapping[str, Any] | None = None

    def load(self) -> Mapping[str, Any] | None:
        """Return the saved resume token, or None when the watcher never ran."""
        found = self._checkpoints.find_one({"_id": self._name})
        self._saved = found["resume_token"] if found else None
        return self._saved

    def save(self, token: Mapping[str, Any] | None) -> None:
        """Save `token` unless it is the one already saved (idle polls repeat it)."""
        if token is None or token == self._saved:
            return
        self._checkpoints.update_one(
            {"_id": self._name},
            {"$set": {"resume_token": dict(token), "saved_at": utc_now()}},
            upsert=True,
        )
        self._saved = token

    def clear(self) -> None:
        """Forget the saved token, so the next start begins from now."""
        self._checkpoints.delete_one({"_id": self._name})
        self._saved = None
