"""Every BSON type has one JSON form (docs/events.md), at any depth."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.dbref import DBRef
from bson.json_util import DatetimeMS

from desks.bson_json import key_text, to_json

OID = ObjectId("673a2f1b8e4d2a1c3b5e6f7a")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (True, True),
        ("Mesa", "Mesa"),
        (Int64(2**40), 2**40),
        (1.5, 1.5),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        (OID, "673a2f1b8e4d2a1c3b5e6f7a"),
        (Decimal128("180.50"), "180.50"),
        (Decimal128("NaN"), "NaN"),
        (datetime.datetime(2026, 11, 28, 14, 30, 45, 123456), "2026-11-28T14:30:45.123Z"),
        (
            datetime.datetime(
                2026, 11, 28, 15, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
            ),
            "2026-11-28T14:30:00.000Z",
        ),
        (DatetimeMS(-(10**15)), -(10**15)),
        (Binary(b"\x00\xff", 0), "AP8="),
        (b"desk", "ZGVzaw=="),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (Timestamp(1700000000, 7), {"$timestamp": {"t": 1700000000, "i": 7}}),
        (Regex("^Mesa", "i"), {"$regularExpression": {"pattern": "^Mesa", "options": "i"}}),
        (MinKey(), {"$minKey": 1}),
        (MaxKey(), {"$maxKey": 1}),
        (Code("f()"), {"$code": "f()"}),
        (DBRef("desks", OID), {"$ref": "desks", "$id": {"$oid": "673a2f1b8e4d2a1c3b5e6f7a"}}),
        ({"a": [{"b": OID}], "c": (1, 2)}, {"a": [{"b": "673a2f1b8e4d2a1c3b5e6f7a"}], "c": [1, 2]}),
    ],
)
def test_each_bson_type_maps_to_its_documented_json(value, expected):
    mapped = to_json(value)
    assert mapped == expected
    json.dumps(mapped, allow_nan=False)  # strict JSON, whatever went in


def test_a_value_bson_does_not_know_is_named_not_fatal():
    assert to_json(object).startswith("<class")


def test_ids_are_text_whatever_their_type():
    assert key_text(OID) == "673a2f1b8e4d2a1c3b5e6f7a"
    assert key_text("mesa-1") == "mesa-1"
    assert key_text(7) == "7"
    assert key_text({"b": 1, "a": OID}) == '{"a":"673a2f1b8e4d2a1c3b5e6f7a","b":1}'
