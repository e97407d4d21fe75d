"""A desk as stored in MongoDB and as shown to clients (REST and events alike)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

FIELDS = ("name", "width", "height")


def utc_now() -> datetime:
    """Return the current UTC time at MongoDB's millisecond precision, naive as pymongo reads it."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_utc(moment: datetime) -> str:
    """Format a stored time as ISO 8601 UTC with milliseconds, e.g. 2026-11-28T14:30:45.123Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def desk_json(document: Mapping[str, Any]) -> dict[str, Any]:
    """Return the public JSON shape of a stored desk document."""
    return {
        "id": str(document["_id"]),
        "name": document["name"],
        "width": document["width"],
        "height": document["height"],
        "version": document["version"],
        "created_at": iso_utc(document["created_at"]),
        "updated_at": iso_utc(document["updated_at"]),
    }


def etag(version: int) -> str:
    """Return the strong entity tag of a desk version, quoted as in the ETag header."""
    return f'"{version}"'
