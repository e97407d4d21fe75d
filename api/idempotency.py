"""Retries that never duplicate: POST with an `Idempotency-Key` creates at most one desk.

A key belongs to the caller that sent it (the token's subject; anonymous callers share one
scope). The first request reserves it, with the id its desk will have; the desk is then
inserted and the answer stored with the reservation in one transaction, so a crash leaves
both or neither. A repeat finds the key: same body, the stored answer again
(`Idempotent-Replayed: true`); another body, 422. A repeat that finds no answer yet (the first
attempt crashed, or still runs) tries the same transaction: one of them commits, the other
finds the desk's id taken and answers what the first stored. An answer is only ever stored
with the reservation that made it, so a request whose key expired and was reserved anew while
it ran can neither store its answer nor create its desk (409).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.desk import utc_now
from desks.store import rollback_safe

Document = dict[str, Any]

KEYS = "idempotency_keys"
MAX_KEY_LENGTH = 255
PURGE_INTERVAL_S = 60.0


class KeyReused(Exception):
    """The key was used before with another request body."""


class KeyLost(Exception):
    """The key's reservation expired and was replaced while this request ran: nothing done."""


@dataclass(frozen=True)
class Outcome:
    """The response to give: status, JSON body, headers, and whether it is a replay."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    replayed: bool


def parse_key(raw: str) -> str | None:
    """Return the key in an Idempotency-Key header, or None when it is not a valid one.

    Accepts the draft standard's quoted string (`"8e03978e-..."`) and the bare token
    most APIs use; 1-255 printable ASCII characters either way.
    """
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 1 <= len(text) <= MAX_KEY_LENGTH or not all(" " <= c <= "~" for c in text):
        return None
    return text


def fingerprint(body: Any) -> str:
    """Return a digest of a JSON body that ignores key order and whitespace."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyKeys:
    """The keys seen in the last `ttl` seconds and what their first request answered."""

    def __init__(self, database: Database[Document], ttl: float) -> None:
        self._keys: Collection[Document] = rollback_safe(database[KEYS])
        # Right after a duplicate-key error: the record that collided, before it is majority
        # committed too (a majority read could miss it and take the key for expired).
        self._colliding: Collection[Document] = database[KEYS]
        self._client = database.client
        self._ttl = timedelta(seconds=ttl)
        self._purged_at = float("-inf")
        self._indexed = False

    def create_once(
        self,
        subject: str,
        key: str,
        digest: str,
        create: Callable[[ObjectId, ClientSession], Outcome],
    ) -> Outcome:
        """Run `create` with the key's desk id, in a transaction, unless `key` has an answer.

        `create` writes with the session it is given: its desk and the answer commit together.
        Raises KeyReused when the key came with another body, KeyLost when its reservation
        was replaced while this request ran.
        """
        self._maintain()
        record_id = json.dumps([subject, key])
        record = self._reserve(record_id, digest)
        if record.get("fingerprint") != digest:
            raise KeyReused(key)
        if "response" in record:
            return _outcome(record["response"], replayed=True)
        reservation = record["desk_id"]

        def answer(session: ClientSession) -> Outcome:
            outcome = create(reservation, session)
            stored = self._keys.update_one(
                {"_id": record_id, "desk_id": reservation, "response": {"$exists": False}},
                {"$set": {"response": _stored(outcome)}},
                session=session,
            )
            if stored.matched_count == 0:
                raise _Answered  # another attempt answered first, or the key was reserved anew
            return outcome

        try:
            with self._client.start_session() as session:
                return session.with_transaction(answer)
        except (DuplicateKeyError, _Answered):
            pass  # the desk or the answer is another attempt's: that attempt committed both
        found = self._colliding.find_one({"_id": record_id})
        if found is None or found.get("desk_id") != reservation or "response" not in found:
            raise KeyLost(key)
        return _outcome(found["response"], replayed=True)

    def _reserve(self, record_id: str, digest: str) -> Document:
        """Return the key's record, making it (with the desk id to use) if it is new."""
        now = utc_now()
        for _ in range(3):  # an expired record is removed, then the key is new again
            record = {
                "_id": record_id,
                "fingerprint": digest,
                "desk_id": ObjectId(),
                "created_at": now,
            }
            try:
                self._keys.insert_one(record)
                return record
            except DuplicateKeyError:
                found = self._colliding.find_one({"_id": record_id})
            if found is not None and found["created_at"] >= now - self._ttl:
                return found
            if found is not None:  # expired: remove that reservation, and only that one
                self._keys.delete_one({"_id": record_id, "desk_id": found["desk_id"]})
        raise KeyLost(record_id)

    def _maintain(self) -> None:
        # Expiry is checked on every read; removing what expired can wait a minute.
        if not self._indexed:
            self._keys.create_index([("created_at", ASCENDING)], name="created_at")
            self._indexed = True
        if time.monotonic() - self._purged_at >= PURGE_INTERVAL_S:
            self._purged_at = time.monotonic()
            self._keys.delete_many({"created_at": {"$lt": utc_now() - self._ttl}})


class _Answered(Exception):
    """The key has an answer already, or another reservation: abort this transaction."""


def _stored(outcome: Outcome) -> Document:
    return {"status": outcome.status, "body": outcome.body, "headers": outcome.headers}


def _outcome(stored: Document, replayed: bool) -> Outcome:
    return Outcome(int(stored["status"]), dict(stored["body"]), dict(stored["headers"]), replayed)
