"""One active watcher at a time: a lease document in MongoDB that the holder keeps renewing."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.desk import utc_now
from desks.store import rollback_safe
from watcher.liveness import provably_gone, this_process

log = logging.getLogger("desks.watcher")

LEASES = "watcher_leases"
RELEASED = datetime(1970, 1, 1)  # the expiry of a released lease: long past, on any clock

Document = dict[str, Any]


class LeaseLost(Exception):
    """A write the lease holder alone may make was refused: a newer holder has taken over."""


class Lease:
    """The right to tail `name`, held by `owner` until `ttl` seconds after its last renewal.

    Expiry is judged by each watcher's own clock, so clocks must agree to well within the TTL.
    Each takeover raises the lease's `term`, a fencing token: the checkpoint refuses writes
    from an older term, so a holder that paused past its expiry and wakes up cannot move it,
    and the event log's unique seq refuses its events.
    """

    def __init__(
        self, database: Database[Document], owner: str, ttl: float, name: str = "desks"
    ) -> None:
        self._leases = rollback_safe(database[LEASES])
        self.owner = owner
        self.ttl = ttl
        self._name = name
        self.term = 0  # the term this owner last held; 0 before it ever held the lease
        self._process = this_process()  # lets a successor on this machine see we have exited

    def acquire(self) -> bool:
        """Take or renew the lease; return whether this owner holds it now.

        A lease held by a process of this machine that has provably exited (see
        `watcher.liveness`) is taken over at once rather than when its TTL runs out.
        """
        now = utc_now()
        expires = now + timedelta(seconds=self.ttl)
        held = self._leases.find_one_and_update(
            {"_id": self._name, "owner": self.owner},
            {"$set": {"expires_at": expires}},
            return_document=ReturnDocument.AFTER,
        )
        if held is None:
            held = self._take_over({"_id": self._name, "expires_at": {"$lt": now}}, expires)
        if held is None:
            held = self._take_from_the_dead(expires)
        if held is None or held.get("owner") != self.owner:
            return False
        self.term = int(held.get("term", 0))
        return True

    def _take_over(self, query: Document, expires: datetime) -> Document | None:
        """Become the holder, in a new term, if `query` still matches the lease."""
        try:
            return self._leases.find_one_and_update(
                query,
                {
                    "$set": {"owner": self.owner, "expires_at": expires, "holder": self._process},
                    "$inc": {"term": 1},
                },
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            return None  # the upsert collided with a live lease held by someone else

    def _take_from_the_dead(self, expires: datetime) -> Document | None:
        """Take over a live lease whose holder has provably exited (killed, crashed)."""
        current = self._leases.find_one({"_id": self._name})
        if current is None or not provably_gone(current.get("holder")):
            return None
        taken = self._take_over(
            {"_id": self._name, "owner": current["owner"], "term": current.get("term")}, expires
        )
        if taken is not None and taken.get("owner") == self.owner:
            log.warning(
                "lease holder has exited; taken over without waiting for its expiry",
                extra={"previous_owner": current["owner"], "pid": current["holder"].get("pid")},
            )
        return taken

    def release(self) -> None:
        """Give the lease up at once, so a standby need not wait for it to expire."""
        # Expired rather than deleted: the term must keep rising across holders.
        self._leases.update_one(
            {"_id": self._name, "owner": self.owner}, {"$set": {"expires_at": RELEASED}}
        )

    def holder(self) -> str | None:
        """Return who holds a live lease, if anyone."""
        found = self._leases.find_one({"_id": self._name})
        if found is None or found["expires_at"] < utc_now():
            return None
        return str(found["owner"])
