"""The change-stream contract: the same tests against the embedded store and a replica set."""

from __future__ import annotations

from typing import Any

import pytest
from bson import Timestamp
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

# Quick polls: the real server's default 1 s await would make these tests slow, not different.
FAST = {"max_await_time_ms": 100}


def next_change(stream: Any, timeout_polls: int = 50) -> dict[str, Any]:
    """Return the next change, polling with a bounded number of empty polls."""
    for _ in range(timeout_polls):
        change = stream.try_next()
        if change is not None:
            return dict(change)
    raise AssertionError("no change arrived")


def drain(stream: Any) -> list[dict[str, Any]]:
    """Return every change available now (until one empty poll)."""
    changes = []
    while (change := stream.try_next()) is not None:
        changes.append(dict(change))
    return changes


def test_watch_resume_token_is_set_right_after_opening(database):
    with database.desks.watch(**FAST) as stream:
        assert stream.resume_token is not None
        assert isinstance(stream.resume_token["_data"], str)
        assert stream.alive


def test_insert_update_delete_event_shapes(database):
    with database.desks.watch(**FAST) as stream:
        key = database.desks.insert_one({"name": "a", "width": 1, "note": "x"}).inserted_id
        database.desks.update_one({"_id": key}, {"$set": {"width": 2}, "$unset": {"note": ""}})
        database.desks.delete_one({"_id": key})
        insert, update, delete = (next_change(stream) for _ in range(3))

    assert insert["operationType"] == "insert"
    assert insert["fullDocument"] == {"_id": key, "name": "a", "width": 1, "note": "x"}
    assert insert["ns"] == {"db": database.name, "coll": "desks"}
    assert insert["documentKey"] == {"_id": key}
    assert isinstance(insert["clusterTime"], Timestamp)
    assert insert["wallTime"].tzinfo is None

    assert update["operationType"] == "update"
    assert "fullDocument" not in update
    assert update["updateDescription"]["updatedFields"] == {"width": 2}
    assert update["updateDescription"]["removedFields"] == ["note"]
    assert update["documentKey"] == {"_id": key}

    assert delete["operationType"] == "delete"
    assert "fullDocument" not in delete
    assert "fullDocumentBeforeChange" not in delete
    assert delete["documentKey"] == {"_id": key}
    assert insert["clusterTime"] <= update["clusterTime"] <= delete["clusterTime"]
    assert len({insert["_id"]["_data"], update["_id"]["_data"], delete["_id"]["_data"]}) == 3


def test_writes_that_change_nothing_emit_nothing(database):
    key = database.desks.insert_one({"width": 1}).inserted_id
    with database.desks.watch(**FAST) as stream:
        database.desks.update_one({"_id": key}, {"$set": {"width": 1}})
        database.desks.delete_one({"width": 999})
        database.desks.update_one({"width": 999}, {"$set": {"width": 5}})
        database.desks.insert_one({"marker": True})
        assert next_change(stream)["operationType"] == "insert"


def test_find_one_and_writes_and_replace_and_upsert_emit_events(database):
    with database.desks.watch(**FAST) as stream:
        key = database.desks.insert_one({"v": 1}).inserted_id
        after = database.desks.find_one_and_update(
            {"_id": key, "v": 1}, {"$inc": {"v": 1}}, return_document=ReturnDocument.AFTER
        )
        assert after["v"] == 2
        assert database.desks.find_one_and_update({"_id": key, "v": 1}, {"$inc": {"v": 1}}) is None
        database.desks.replace_one({"_id": key}, {"v": 10})
        database.desks.update_one({"u": 1}, {"$set": {"v": 0}}, upsert=True)
        deleted = database.desks.find_one_and_delete({"_id": key})
        assert deleted == {"_id": key, "v": 10}
        kinds = [next_change(stream)["operationType"] for _ in range(5)]
    assert kinds == ["insert", "update", "replace", "insert", "delete"]


def test_many_writes_emit_one_event_per_document_in_order(database):
    with database.desks.watch(**FAST) as stream:
        keys = database.desks.insert_many([{"n": i} for i in range(5)]).inserted_ids
        database.desks.update_many({}, {"$inc": {"n": 100}})
        database.desks.delete_many({})
        changes = [next_change(stream) for _ in range(15)]
    assert [c["operationType"] for c in changes] == ["insert"] * 5 + ["update"] * 5 + ["delete"] * 5
    assert [c["documentKey"]["_id"] for c in changes[:5]] == keys
    assert {c["documentKey"]["_id"] for c in changes[10:]} == set(keys)


def test_resume_after_returns_events_strictly_after_the_token(database):
    with database.desks.watch(**FAST) as stream:
        for n in range(3):
            database.desks.insert_one({"n": n})
        first = next_change(stream)
    with database.desks.watch(resume_after=first["_id"], **FAST) as resumed:
        assert [c["fullDocument"]["n"] for c in (next_change(resumed), next_change(resumed))] == [
            1,
            2,
        ]


def test_resume_token_after_an_empty_poll_resumes_at_that_point(database):
    database.desks.insert_one({"before": True})
    with database.desks.watch(**FAST) as stream:
        assert stream.try_next() is None
        token = stream.resume_token
    database.desks.insert_one({"after": True})
    with database.desks.watch(resume_after=token, **FAST) as resumed:
        assert next_change(resumed)["fullDocument"].keys() >= {"after"}


def test_start_after_accepts_an_event_token(database):
    with database.desks.watch(**FAST) as stream:
        database.desks.insert_one({"n": 0})
        database.desks.insert_one({"n": 1})
        first = next_change(stream)
    with database.desks.watch(start_after=first["_id"], **FAST) as resumed:
        assert next_change(resumed)["fullDocument"]["n"] == 1


def test_start_at_operation_time_includes_that_time(database):
    with database.desks.watch(**FAST) as stream:
        database.desks.insert_one({"n": 0})
        database.desks.insert_one({"n": 1})
        second = [next_change(stream), next_change(stream)][1]
    with database.desks.watch(start_at_operation_time=second["clusterTime"], **FAST) as resumed:
        assert next_change(resumed)["_id"] == second["_id"]


def test_update_lookup_reads_the_document_when_the_batch_is_built(database):
    with database.desks.watch(full_document="updateLookup", **FAST) as stream:
        key = database.desks.insert_one({"v": 1}).inserted_id
        database.desks.update_one({"_id": key}, {"$set": {"v": 2}})
        database.desks.update_one({"_id": key}, {"$set": {"v": 3}})
        next_change(stream)  # one getMore: the batch holds all three, looked up now
        database.desks.delete_one({"_id": key})  # after the batch was built: no effect on it
        assert next_change(stream)["fullDocument"] == {"_id": key, "v": 3}  # a later version
        assert next_change(stream)["fullDocument"] == {"_id": key, "v": 3}
        assert next_change(stream)["operationType"] == "delete"
        key = database.desks.insert_one({"v": 1}).inserted_id
        database.desks.update_one({"_id": key}, {"$set": {"v": 2}})
        database.desks.delete_one({"_id": key})
        next_change(stream)
        assert next_change(stream)["fullDocument"] is None  # gone when its batch was built


def test_pre_images_carry_the_deleted_document(database):
    database.create_collection("desks", changeStreamPreAndPostImages={"enabled": True})
    key = database.desks.insert_one({"name": "Mesa"}).inserted_id
    with database.desks.watch(full_document_before_change="whenAvailable", **FAST) as stream:
        database.desks.update_one({"_id": key}, {"$set": {"name": "Mesa 2"}})
        database.desks.delete_one({"_id": key})
        update, delete = next_change(stream), next_change(stream)
    assert update["fullDocumentBeforeChange"] == {"_id": key, "name": "Mesa"}
    assert delete["fullDocumentBeforeChange"] == {"_id": key, "name": "Mesa 2"}
    assert list(delete)[-1] == "fullDocumentBeforeChange"


def test_pre_images_are_none_when_not_enabled(database):
    key = database.desks.insert_one({"name": "Mesa"}).inserted_id
    with database.desks.watch(full_document_before_change="whenAvailable", **FAST) as stream:
        database.desks.delete_one({"_id": key})
        assert next_change(stream)["fullDocumentBeforeChange"] is None


def test_several_streams_see_the_same_events_in_the_same_order(database):
    streams = [database.desks.watch(**FAST) for _ in range(3)]
    for n in range(10):
        database.desks.insert_one({"n": n})
    seen = [[next_change(s)["fullDocument"]["n"] for _ in range(10)] for s in streams]
    for stream in streams:
        stream.close()
    assert seen == [list(range(10))] * 3


def test_pipeline_match_filters_events(database):
    pipeline = [{"$match": {"operationType": {"$in": ["delete"]}}}]
    with database.desks.watch(pipeline, **FAST) as stream:
        key = database.desks.insert_one({"n": 1}).inserted_id
        database.desks.delete_one({"_id": key})
        assert next_change(stream)["operationType"] == "delete"


def test_drop_emits_drop_then_invalidate_and_ends_the_stream(database):
    database.desks.insert_one({"n": 1})
    stream = database.desks.watch(**FAST)
    database.desks.drop()
    assert next_change(stream)["operationType"] == "drop"
    invalidate = next_change(stream)
    assert invalidate["operationType"] == "invalidate"
    assert "ns" not in invalidate
    assert not stream.alive

    with pytest.raises(OperationFailure) as error:
        database.desks.watch(resume_after=invalidate["_id"], **FAST).try_next()
    assert error.value.code == 260

    with database.desks.watch(start_after=invalidate["_id"], **FAST) as restarted:
        database.desks.insert_one({"n": 2})
        assert next_change(restarted)["fullDocument"]["n"] == 2


def test_start_after_wins_over_resume_after_as_pymongo_sends_it(database):
    # pymongo sends one token only (startAfter when given), and no startAtOperationTime with it.
    with database.desks.watch(**FAST) as stream:
        start = stream.resume_token
        database.desks.insert_one({"n": 0})
        first = next_change(stream)
        database.desks.insert_one({"n": 1})
        next_change(stream)
    options = {"resume_after": start, "start_after": first["_id"]}
    with database.desks.watch(**options, **FAST) as resumed:
        assert next_change(resumed)["fullDocument"]["n"] == 1
    moment = first["clusterTime"]
    with database.desks.watch(
        resume_after=first["_id"], start_at_operation_time=moment, **FAST
    ) as s:
        assert next_change(s)["fullDocument"]["n"] == 1


@pytest.mark.parametrize("token", [{"nope": 1}, {"_data": "not hex"}])
def test_malformed_tokens_are_refused(database, token):
    with pytest.raises(OperationFailure):
        database.desks.watch(resume_after=token, **FAST).try_next()


def test_closed_stream_reports_not_alive_and_stops_iteration(database):
    stream = database.desks.watch(**FAST)
    stream.close()
    assert not stream.alive
    with pytest.raises(StopIteration):
        next(stream)


def test_drop_ends_a_filtered_stream_before_any_write_to_the_new_collection(database):
    # The watcher's own pipeline: the drop and the invalidate do not pass it. MongoDB still
    # ends the stream at the drop, with the invalidate's token as its resume token.
    pipeline = [{"$match": {"operationType": {"$in": ["insert", "update", "replace", "delete"]}}}]
    with database.desks.watch(pipeline, **FAST) as stream:
        database.desks.insert_one({"n": 1})
        database.desks.drop()
        database.desks.insert_one({"n": 2})  # into a new collection of the same name
        seen = []
        for _ in range(50):
            if not stream.alive:
                break
            change = stream.try_next()
            if change is not None:
                seen.append(change["fullDocument"]["n"])
        assert seen == [1]
        assert not stream.alive
        token = stream.resume_token
    with pytest.raises(OperationFailure) as error:
        database.desks.watch(resume_after=token, **FAST).try_next()
    assert error.value.code == 260


def test_resume_after_a_drop_event_returns_the_invalidate(database):
    with database.desks.watch(**FAST) as stream:
        database.desks.insert_one({"n": 1})
        database.desks.drop()
        next_change(stream)
        drop = next_change(stream)
    assert drop["operationType"] == "drop"
    database.desks.insert_one({"n": 2})
    with database.desks.watch(resume_after=drop["_id"], **FAST) as resumed:
        assert next_change(resumed)["operationType"] == "invalidate"
        assert not resumed.alive


def test_set_to_an_equal_value_of_another_type_is_a_change_with_an_event(database):
    key = database.desks.insert_one({"width": 1}).inserted_id
    with database.desks.watch(**FAST) as stream:
        result = database.desks.update_one({"_id": key}, {"$set": {"width": 1.0}})
        assert result.modified_count == 1
        change = next_change(stream)
    assert change["updateDescription"]["updatedFields"] == {"width": 1.0}
    assert type(change["updateDescription"]["updatedFields"]["width"]) is float
    assert type(database.desks.find_one({"_id": key})["width"]) is float


def test_a_write_rejected_by_a_unique_index_leaves_no_trace(database):
    database.desks.create_index("token", unique=True)
    with database.desks.watch(**FAST) as stream:
        database.desks.insert_one({"token": "a", "n": 1})
        other = database.desks.insert_one({"token": "b", "n": 2}).inserted_id
        with pytest.raises(DuplicateKeyError):
            database.desks.insert_one({"token": "a", "n": 3})
        with pytest.raises(DuplicateKeyError):
            database.desks.update_one({"_id": other}, {"$set": {"token": "a", "n": 4}})
        database.desks.insert_one({"token": "c", "n": 5})
        changes = [next_change(stream) for _ in range(3)]
        assert stream.try_next() is None
    assert [c["fullDocument"]["n"] for c in changes] == [1, 2, 5]
    assert sorted(d["n"] for d in database.desks.find()) == [1, 2, 5]
    assert database.desks.find_one({"_id": other})["token"] == "b"


def test_insert_many_stops_at_a_duplicate_when_ordered_and_logs_what_it_inserted(database):
    database.desks.insert_one({"_id": 2})
    with database.desks.watch(**FAST) as stream:
        with pytest.raises(BulkWriteError) as error:
            database.desks.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 3}])
        assert error.value.details["nInserted"] == 1
        assert next_change(stream)["documentKey"] == {"_id": 1}
        assert stream.try_next() is None
    assert sorted(d["_id"] for d in database.desks.find()) == [1, 2]
