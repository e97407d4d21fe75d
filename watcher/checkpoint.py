"""The watcher's checkpoint: the resume token to restart the change stream from."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.desk import utc_now
from desks.store import rollback_safe
from watcher.lease import Lease, LeaseLost

Document = dict[str, Any]

CHECKPOINTS = "watcher_checkpoints"


class Checkpoint:
    """One saved resume token per watched collection, and whether a resync is owed.

    Saves after logged changes are throttled to one per `interval` seconds: each is a write
    (and on MongoDB a majority commit), and the log's unique token index already makes a change
    read again after a crash harmless. A crash re-reads at most `interval` seconds of changes.
    While nothing changes, the token still moves (empty polls) but is saved only once per
    `idle_interval`, to stay inside the oplog window: an idle watcher writes almost nothing.

    With a `lease`, every write is fenced by its term: a holder that lost the lease cannot
    move the checkpoint or owe a resync once a newer holder has written (LeaseLost).
    """

    def __init__(
        self,
        database: Database[Document],
        name: str = "desks",
        interval: float = 1.0,
        idle_interval: float = 60.0,
        lease: Lease | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checkpoints = rollback_safe(database[CHECKPOINTS])
        self._name = name
        self._interval = interval
        self._idle_interval = idle_interval
        self._lease = lease
        self._clock = clock
        self._saved: Mapping[str, Any] | None = None
        self._pending: Document | None = None  # a throttled save: token and what goes with it
        self._saved_at = float("-inf")
        self.resync_reason: str | None = None
        # The seq of a snapshot marker while changes it may already show can still arrive;
        # saved with the token, so a restart keeps checking them (see Watcher._contradicts).
        self.settling_after: int | None = None
        # The log's head when the saved token was taken: where a re-read resumes judging.
        self.logged_through: int | None = None

    def load(self) -> Mapping[str, Any] | None:
        """Return the saved resume token (None: start from now); note any resync owed."""
        found = self._checkpoints.find_one({"_id": self._name}) or {}
        self._saved = found.get("resume_token")
        self._pending = None
        self._saved_at = self._clock()
        self.resync_reason = found.get("resync")
        self.settling_after = found.get("settling_after")
        self.logged_through = found.get("logged_through")
        return self._saved

    def age(self) -> float:
        """Return the seconds since this process last loaded or saved the checkpoint."""
        return self._clock() - self._saved_at

    def save(
        self,
        token: Mapping[str, Any] | None,
        force: bool = False,
        logged_through: int | None = None,
    ) -> None:
        """Save `token` now if forced or if `interval` has passed, else at the next chance.

        `logged_through` is the log's head when the token was taken; it is saved with it, as
        is `settling_after` as it stands now: a later save must not make an earlier token's
        restart forget that it still has changes to judge.
        """
        if token is None or (token == self._saved and self.resync_reason is None):
            self._pending = None
            return
        state: Document = {
            "resume_token": dict(token),
            "settling_after": self.settling_after,
            "logged_through": logged_through,
        }
        if not force and self._clock() - self._saved_at < self._interval:
            self._pending = state
            return
        self._write_state(state)

    def _write_state(self, state: Document) -> None:
        self._write(state, unset_resync=True)
        self._saved, self._pending = state["resume_token"], None
        self.resync_reason = None

    def idle(self, token: Mapping[str, Any] | None, logged_through: int | None = None) -> None:
        """Note the token of a poll that found no change: saved only when it must be.

        That is when a throttled save of logged changes is due, or when the saved token is
        `idle_interval` old (a token older than the oplog window could not be resumed).
        """
        if self._pending is not None:
            self.save(token, logged_through=logged_through)
        elif self._clock() - self._saved_at >= self._idle_interval:
            self.save(token, force=True, logged_through=logged_through)

    def flush(self) -> None:
        """Save the token a throttled save left pending (on a clean stop)."""
        if self._pending is not None:
            self._write_state(self._pending)

    def start_over(self, reason: str) -> None:
        """Drop the token, so the next start begins from now, and owe clients a resync.

        The resync is stored with the checkpoint so a crash before it is logged cannot lose it.
        """
        self._write({"resume_token": None, "resync": reason}, unset_resync=False)
        self._saved, self._pending = None, None
        self.resync_reason = reason

    def _write(self, fields: Document, unset_resync: bool) -> None:
        query: Document = {"_id": self._name}
        values: Document = {**fields, "saved_at": utc_now()}
        if self._lease is not None:
            # Fenced: only while no newer term has written (a checkpoint without one is older).
            query["$or"] = [{"term": {"$lte": self._lease.term}}, {"term": {"$exists": False}}]
            values["term"] = self._lease.term
        update: Document = {"$set": values}
        if unset_resync:
            update["$unset"] = {"resync": ""}
        try:
            self._checkpoints.update_one(query, update, upsert=True)
        except DuplicateKeyError:
            # The fenced filter missed an existing checkpoint: a newer holder wrote it.
            term = self._lease.term if self._lease is not None else None
            raise LeaseLost(f"the checkpoint has a term newer than {term}") from None
        self._saved_at = self._clock()
