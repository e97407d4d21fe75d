"""BSON values as JSON: the one mapping every event applies, at any depth (docs/events.md).

A desk written around the API may hold anything BSON can; an event must still be JSON that
every client can parse. Types with a natural JSON form get it; the rest take MongoDB's relaxed
Extended JSON form, which is JSON too and says what the value was.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from bson import Decimal128, ObjectId, json_util
from bson.datetime_ms import DatetimeMS

_RELAXED = json_util.RELAXED_JSON_OPTIONS


def iso_utc(moment: datetime.datetime) -> str:
    """Format a stored time as ISO 8601 UTC with milliseconds, e.g. 2026-11-28T14:30:45.123Z."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def to_json(value: Any) -> Any:
    """Return `value` with every BSON type replaced by its JSON form (see docs/events.md)."""
    if value is None or isinstance(value, bool) or type(value) is str:  # not Code, a str too
        return value
    if isinstance(value, int):  # Int64 too
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, Mapping):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, Decimal128):
        return str(value)
    if isinstance(value, datetime.datetime):
        return iso_utc(value)
    if isinstance(value, DatetimeMS):  # a date outside Python's range: milliseconds since 1970
        return int(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):  # bson.Binary too, whatever its subtype
        return base64.b64encode(value).decode("ascii")
    try:
        return json.loads(json_util.dumps(value, json_options=_RELAXED))
    except TypeError:  # not a BSON type at all: say what it was rather than fail
        return str(value)


def _non_finite(value: float) -> str:
    # JSON has no NaN or Infinity; these are the spellings Decimal128 uses for the same values.
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def key_text(value: Any) -> str:
    """Return a document's _id as text: strings as they are, anything else as compact JSON."""
    mapped = to_json(value)
    if isinstance(mapped, str):
        return mapped
    return json.dumps(mapped, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
