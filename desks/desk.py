"""A desk as stored in MongoDB and as shown to clients (REST and events alike)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from desks.bson_json import iso_utc, key_text, to_json

__all__ = ["FIELDS", "SHOWN", "desk_json", "etag", "iso_utc", "utc_now"]

FIELDS = ("name", "width", "height")
# What a desk shows besides its id, in this order.
SHOWN = (*FIELDS, "version", "created_at", "updated_at")


def utc_now() -> datetime:
    """Return the current UTC time at MongoDB's millisecond precision, naive as pymongo reads it."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def desk_json(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return a stored desk as clients see it (REST and events alike): the fields it has.

    A document written around the API may lack fields or hold any BSON type: the fields it
    has are shown, each value mapped to JSON (docs/events.md says how), never a reason to fail.
    """
    desk: dict[str, Any] = {"id": key_text(document.get("_id"))}
    for name in SHOWN:
        if name in document:
            desk[name] = to_json(document[name])
    return desk


def etag(version: int) -> str:
    """Return the strong entity tag of a desk version, quoted as in the ETag header."""
    return f'"{version}"'
