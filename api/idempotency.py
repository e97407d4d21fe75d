"""Retries that never duplicate: POST with an `Idempotency-Key` creates at most one desk.

The key is recorded before the desk is written, with the id the desk will have; the desk is
then inserted under that id, and the response stored with the key. A repeat finds the key:
same body, the stored response again (`Idempotent-Replayed: true`); another body, 422. A
repeat that finds the key without a response (the first attempt crashed, or is still
running) inserts under the same id, and the store's unique `_id` lets only one of them win.
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
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.desk import utc_now
from desks.store import majority

Document = dict[str, Any]

KEYS = "idempotency_keys"
MAX_KEY_LENGTH = 255
PURGE_INTERVAL_S = 60.0


class KeyReused(Exception):
    """The key was used before with another request body."""


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
        self._keys: Collection[Document] = majority(database[KEYS])
        self._ttl = timedelta(seconds=ttl)
        self._purged_at = float("-inf")
        self._indexed = False

    def create_once(self, key: str, digest: str, create: Callable[[ObjectId], Outcome]) -> Outcome:
        """Run `create` with the key's desk id unless `key` has an answer already.

        Raises KeyReused when the key came with another body. `create` must cope with a desk
        that exists under that id already (an earlier attempt that did not finish).
        """
        self._maintain()
        record = self._reserve(key, digest)
        if record.get("fingerprint") != digest:
            raise KeyReused(key)
        if "response" in record:
            return _outcome(record["response"], replayed=True)
        outcome = create(record["desk_id"])
        self._keys.update_one({"_id": key}, {"$set": {"response": _stored(outcome)}})
        return outcome

    def _reserve(self, key: str, digest: str) -> Document:
        """Return the key's record, making it (with the desk id to use) if it is new."""
        now = utc_now()
        for _ in range(3):  # an expired record is removed, then the key is new again
            record = {"_id": key, "fingerprint": digest, "desk_id": ObjectId(), "created_at": now}
            try:
                self._keys.insert_one(record)
                return record
            except DuplicateKeyError:
                found = self._keys.find_one({"_id": key})
            if found is not None and found["created_at"] >= now - self._ttl:
                return found
            if found is not None:
                self._keys.delete_one({"_id": key, "created_at": found["created_at"]})
        raise RuntimeError(f"idempotency key {key!r} kept changing under us")

    def _maintain(self) -> None:
        # Expiry is checked on every read; removing what expired can wait a minute.
        if not self._indexed:
            self._keys.create_index([("created_at", ASCENDING)], name="created_at")
            self._indexed = True
        if time.monotonic() - self._purged_at >= PURGE_INTERVAL_S:
            self._purged_at = time.monotonic()
            self._keys.delete_many({"created_at": {"$lt": utc_now() - self._ttl}})


def _stored(outcome: Outcome) -> Document:
    return {"status": outcome.status, "body": outcome.body, "headers": outcome.headers}


def _outcome(stored: Document, replayed: bool) -> Outcome:
    return Outcome(int(stored["status"]), dict(stored["body"]), dict(stored["headers"]), replayed)
