"""The event contract: from a change-stream event to the wire and back."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from bson import Decimal128, ObjectId, Timestamp

from desks.events import (
    DeskCreated,
    DeskDeleted,
    DeskUpdated,
    EventFormatError,
    decode,
    fit,
    from_change,
)

KEY = ObjectId("673a2f1b8e4d2a1c3b5e6f7a")
CREATED = datetime(2026, 11, 28, 14, 30, 45, 123000)
UPDATED = datetime(2026, 11, 28, 14, 31, 0, 0)
DOC = {
    "_id": KEY,
    "name": "Mesa Ejecutiva",
    "width": 180,
    "height": 90,
    "version": 1,
    "created_at": CREATED,
    "updated_at": CREATED,
}
AFTER = {**DOC, "width": 200, "version": 2, "updated_at": UPDATED}


def change(operation, **fields):
    return {
        "_id": {"_data": "82AA"},
        "operationType": operation,
        "clusterTime": Timestamp(1795876245, 1),
        "wallTime": UPDATED if operation != "insert" else CREATED,
        "ns": {"db": "desks", "coll": "desks"},
        "documentKey": {"_id": KEY},
        **fields,
    }


def test_insert_becomes_desk_created_with_the_rest_desk_shape():
    event = from_change(change("insert", fullDocument=DOC), 1)
    assert isinstance(event, DeskCreated)
    assert event.to_json() == {
        "type": "desk_created",
        "seq": 1,
        "desk_id": str(KEY),
        "version": 1,
        "at": "2026-11-28T14:30:45.123Z",
        "desk": {
            "id": str(KEY),
            "name": "Mesa Ejecutiva",
            "width": 180,
            "height": 90,
            "version": 1,
            "created_at": "2026-11-28T14:30:45.123Z",
            "updated_at": "2026-11-28T14:30:45.123Z",
        },
    }


def test_update_carries_the_desk_after_and_what_changed_with_old_values():
    description = {
        "updatedFields": {"width": 200, "version": 2, "updated_at": UPDATED},
        "removedFields": [],
        "truncatedArrays": [],
    }
    event = from_change(
        change(
            "update",
            fullDocument=AFTER,
            updateDescription=description,
            fullDocumentBeforeChange=DOC,
        ),
        2,
    )
    assert isinstance(event, DeskUpdated)
    assert (event.version, event.desk["width"]) == (2, 200)
    assert event.changes["set"] == {
        "width": 200,
        "version": 2,
        "updated_at": "2026-11-28T14:31:00.000Z",
    }
    assert event.changes["removed"] == []
    assert event.changes["previous"]["width"] == 180


def test_update_without_post_image_applies_the_change_to_the_last_logged_state():
    description = {"updatedFields": {"width": 200, "version": 2}, "removedFields": []}
    previous = from_change(change("insert", fullDocument=DOC), 1).desk
    event = from_change(change("update", updateDescription=description), 2, previous)
    assert (event.desk["name"], event.desk["width"], event.version) == ("Mesa Ejecutiva", 200, 2)
    assert "previous" not in event.changes


def test_delete_names_the_deleted_desk_from_the_pre_image_or_last_state():
    event = from_change(change("delete", fullDocumentBeforeChange=AFTER), 3)
    assert isinstance(event, DeskDeleted)
    assert (event.desk["name"], event.version) == ("Mesa Ejecutiva", 2)
    fallback = from_change(change("delete"), 3, {"id": str(KEY), "name": "Vieja", "version": 7})
    assert (fallback.desk["name"], fallback.version) == ("Vieja", 7)


def test_non_desk_operations_are_not_events():
    assert from_change({"operationType": "drop"}, 1) is None


def test_encode_decode_round_trip():
    event = from_change(change("insert", fullDocument=DOC), 1)
    text = event.encode()
    assert json.loads(text)["type"] == "desk_created"
    assert decode(text) == event


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1]",
        '{"type": "desk_exploded", "seq": 1}',
        '{"type": "desk_created", "seq": 1}',
        '{"type": "desk_created", "seq": 0, "desk_id": "x", "version": 1, "at": "", "desk": {}}',
        '{"type": "desk_created", "seq": 1, "desk_id": "x", "version": 1, "at": "", "desk": []}',
        '{"type": "desk_created", "seq": 1, "desk_id": "x", "version": 1, "at": "14:30",'
        ' "desk": {}}',
        '{"type": "desk_updated", "seq": 1, "desk_id": "x", "version": 1,'
        ' "at": "2026-11-28T14:30:45.123Z", "desk": {}, "changes": []}',
        '{"type": "desk_created", "seq": 1, "desk_id": "x", "version": "1",'
        ' "at": "2026-11-28T14:30:45.123Z", "desk": {}}',
        '{"type": "resync", "seq": 1, "at": 5}',
        b"\xff\xfe",
    ],
)
def test_decode_rejects_what_breaks_the_contract(message):
    with pytest.raises(EventFormatError):
        decode(message)


def test_a_desk_written_around_the_api_is_an_event_whatever_it_holds():
    document = {"_id": 7, "name": Decimal128("1.5"), "width": [CREATED], "version": True}
    event = from_change(change("insert", fullDocument=document, documentKey={"_id": 7}), 1)
    assert event.desk_id == "7"
    width = ["2026-11-28T14:30:45.123Z"]
    assert event.desk == {"id": "7", "name": "1.5", "width": width, "version": True}
    assert event.version == 0  # not an integer version: 0, as documented
    assert decode(event.encode()) == event


def test_an_event_too_large_for_clients_is_reduced_not_dropped():
    big = {**DOC, "name": "x" * 100_000}
    update = change(
        "update",
        fullDocument=big,
        updateDescription={"updatedFields": {"name": big["name"]}, "removedFields": []},
    )
    event = from_change(update, 3)
    reduced = fit(event, 64 * 1024)
    wire = json.loads(reduced.encode())
    assert wire["truncated"] is True and "changes" not in wire
    assert wire["desk"] == {
        "id": str(KEY),
        "width": 180,
        "height": 90,
        "version": 1,
        "created_at": "2026-11-28T14:30:45.123Z",
        "updated_at": "2026-11-28T14:30:45.123Z",
    }
    assert (wire["seq"], wire["version"]) == (3, 1)
    assert len(reduced.encode().encode()) < 1024
    assert decode(reduced.encode()) == reduced
    small = from_change(change("insert", fullDocument=DOC), 1)
    assert fit(small, 64 * 1024) is small
    assert "truncated" not in json.loads(small.encode())


def test_an_update_from_update_lookup_is_marked_and_others_are_not():
    # Without pre- and post-images an update's fullDocument is the desk when the change was
    # read (updateLookup): it may already hold later changes. The event says so.
    later = {**AFTER, "name": "Renamed since", "version": 3}
    description = {"updatedFields": {"width": 200, "version": 2}, "removedFields": []}
    marked = from_change(
        change("update", fullDocument=later, updateDescription=description), 2, None, True
    )
    assert isinstance(marked, DeskUpdated) and marked.looked_up
    wire = json.loads(marked.encode())
    assert wire["looked_up"] is True
    assert wire["changes"]["set"] == {"width": 200, "version": 2}  # the change itself: exact
    assert decode(marked.encode()) == marked
    logged = from_change(change("insert", fullDocument=DOC), 1).desk
    # With images, a replace (its document is the replacement), or no document: unmarked,
    # and the wire shape is unchanged (no field at all).
    exact = from_change(change("update", fullDocument=AFTER, updateDescription=description), 2)
    replaced = from_change(change("replace", fullDocument=AFTER), 2, None, True)
    without = from_change(change("update", updateDescription=description), 2, logged, True)
    for event in (exact, replaced, without):
        assert isinstance(event, DeskUpdated) and not event.looked_up
        assert "looked_up" not in json.loads(event.encode())
    with pytest.raises(EventFormatError, match="looked_up"):
        decode({**wire, "looked_up": "yes"})
