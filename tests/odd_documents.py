"""Desks written straight into the store, around the API: every BSON type, missing fields, odd ids.

The live path (watcher -> clients) and every read path (REST list, item, `as_of`, timelines,
the dashboard) are tested with these same documents.
"""

from __future__ import annotations

import datetime
from typing import Any

from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.dbref import DBRef

WHEN = datetime.datetime(2026, 11, 28, 14, 30, 45, 123000)
ODD_VALUES = {
    "objectid": ObjectId("673a2f1b8e4d2a1c3b5e6f7a"),
    "decimal": Decimal128("180.50"),
    "nested_date": {"when": [WHEN]},
    "binary": Binary(b"\x00\xffdesk", 0),
    "uuid": Binary(bytes(range(16)), 4),
    "int64": Int64(2**40),
    "timestamp": Timestamp(1700000000, 7),
    "regex": Regex("^Mesa", "i"),
    "min": MinKey(),
    "max": MaxKey(),
    "code": Code("function () {}"),
    "dbref": DBRef("desks", ObjectId("673a2f1b8e4d2a1c3b5e6f7a")),
    "nan": float("nan"),
    "infinity": float("-inf"),
}


def odd_desks() -> list[dict[str, Any]]:
    """Return documents as a hand-written insert might leave them (each shown as it is)."""
    return [
        *(
            {"name": name, "width": value, "height": 90, "version": 1, "x": value}
            for name, value in ODD_VALUES.items()
        ),
        {"name": "no dates", "width": 1, "height": 1, "version": 1},  # no created_at/updated_at
        {},  # nothing at all
        {"name": "no version", "width": 100, "height": 50, "created_at": WHEN},
        {"name": "version as text", "width": 100, "height": 50, "version": "abc"},
        {"name": 42, "width": "wide", "height": None, "version": True, "created_at": "yesterday"},
        {"_id": "desk-by-hand", "name": "string id", "width": 1, "height": 1, "version": 1},
        {"_id": 7, "name": "integer id", "width": 1, "height": 1, "version": 1},
    ]
