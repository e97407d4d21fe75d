"""One active watcher at a time: a lease document in MongoDB that the holder keeps renewing."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.desk import utc_now

log = logging.getLogger("desks.watcher")

LEASES = "watcher_leases"

Document = dict[str, Any]


class Lease:
    """The right to tail `name`, held by `owner` until `ttl` seconds after its last renewal.

    Expiry is judged by each watcher's own clock, so clocks must agree to well within the TTL.
    The event log's unique seq is the fence: a holder that paused past its expiry and wakes up
    cannot log a seq the new holder already used.
    """

    def __init__(
        self, database: Database[Document], owner: str, ttl: float, name: str = "desks"
    ) -> None:
        self._leases = database[LEASES]
        self.owner = owner
        self.ttl = ttl
        self._name = name

    def acquire(self) -> bool:
        """Take or renew the lease; return whether this owner holds it now."""
        now = utc_now()
        try:
            held = self._leases.find_one_and_update(
                {"_id": self._name, "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=self.ttl)}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return False  # the upsert collided with a live lease held by someone else
        return held is not None and held.get("owner") == self.owner

    def release(self) -> None:
        """Give the lease up at once, so a standby need not wait for it to expire."""
        self._leases.delete_one({"_id": self._name, "owner": self.owner})

    def holder(self) -> str | None:
        """Return who holds a live lease, if anyone."""
        found = self._leases.find_one({"_id": self._name})
        if found is None or found["expires_at"] < utc_now():
            return None
        return str(found["owner"])
