"""The collection contract: the same reads and writes on the embedded store and a replica set."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
from bson import Int64, ObjectId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError


def test_positional_update_changes_the_element_the_filter_matched(database):
    key = database.desks.insert_one(
        {"legs": [{"k": "a", "cm": 70}, {"k": "b", "cm": 71}, {"k": "c", "cm": 72}]}
    ).inserted_id
    database.desks.update_one({"_id": key, "legs.k": "b"}, {"$set": {"legs.$.cm": 75}})
    legs = database.desks.find_one({"_id": key})["legs"]
    assert [leg["cm"] for leg in legs] == [70, 75, 72]


def test_upsert_inserts_the_filter_equalities_and_the_update(database):
    result = database.desks.update_one(
        {"name": "Mesa", "width": {"$gt": 5}}, {"$set": {"height": 3}}, upsert=True
    )
    document = database.desks.find_one({"_id": result.upserted_id})
    assert document == {"_id": result.upserted_id, "name": "Mesa", "height": 3}


def test_find_one_and_update_returns_before_or_after_with_projection(database):
    key = database.desks.insert_one({"v": 1, "name": "x"}).inserted_id
    before = database.desks.find_one_and_update({"_id": key}, {"$inc": {"v": 1}}, {"v": 1})
    after = database.desks.find_one_and_update(
        {"_id": key}, {"$inc": {"v": 1}}, {"_id": 0, "v": 1}, return_document=ReturnDocument.AFTER
    )
    assert before == {"_id": key, "v": 1}
    assert after == {"v": 3}


def test_stored_documents_put_id_first_and_keep_field_order(database):
    database.desks.insert_one({"b": 1, "a": 2, "_id": 7})
    assert list(database.desks.find_one({"_id": 7})) == ["_id", "b", "a"]


def test_sort_orders_mixed_types_as_mongodb_does(database):
    values = ["b", 2, None, 1.5, True, "a", ObjectId("0" * 24), datetime(2020, 1, 1), {"x": 1}]
    database.desks.insert_many([{"v": v} for v in values])
    ascending = [d["v"] for d in database.desks.find({}, {"_id": 0}).sort("v", ASCENDING)]
    assert ascending == [
        None,
        1.5,
        2,
        "a",
        "b",
        {"x": 1},
        ObjectId("0" * 24),
        True,
        datetime(2020, 1, 1),
    ]
    database.desks.create_index("v")
    indexed = [d["v"] for d in database.desks.find({}, {"_id": 0}).sort("v", DESCENDING)]
    assert indexed == ascending[::-1]


def test_numbers_of_every_type_compare_by_value(database):
    database.desks.insert_many([{"n": 1}, {"n": 1.0}, {"n": Int64(1)}, {"n": 2}])
    assert database.desks.count_documents({"n": 1}) == 3
    database.desks.create_index("n")
    assert database.desks.count_documents({"n": 1.0}) == 3
    assert database.desks.count_documents({"n": {"$gt": 1}}) == 1


def test_range_filters_match_only_their_own_type(database):
    database.desks.create_index("v")
    database.desks.insert_many([{"v": 5}, {"v": "5"}, {"v": 7.5}, {"v": None}, {}])
    assert sorted(d["v"] for d in database.desks.find({"v": {"$gte": 5}})) == [5, 7.5]
    assert [d["v"] for d in database.desks.find({"v": {"$lt": "z"}})] == ["5"]
    assert database.desks.count_documents({"v": None}) == 2  # null and missing


def test_skip_limit_and_count_agree_on_a_filtered_sorted_query(database):
    database.desks.create_index([("group", ASCENDING), ("n", DESCENDING)])
    database.desks.insert_many([{"group": n % 3, "n": n} for n in range(30)])
    page = database.desks.find({"group": 1}).sort("n", DESCENDING).skip(2).limit(3)
    assert [d["n"] for d in page] == [22, 19, 16]
    assert database.desks.count_documents({"group": 1}, skip=2, limit=3) == 3
    assert database.desks.count_documents({"group": {"$in": [0, 2]}}) == 20


def test_a_unique_compound_index_rejects_a_duplicate_pair_only(database):
    database.desks.create_index([("a", 1), ("b", 1)], unique=True)
    database.desks.insert_one({"a": 1, "b": 1})
    database.desks.insert_one({"a": 1, "b": 2})
    with pytest.raises(DuplicateKeyError) as error:
        database.desks.insert_one({"a": 1, "b": 1.0})
    assert error.value.code == 11000
    assert database.desks.count_documents({}) == 2


def test_creating_a_unique_index_over_duplicates_fails_and_creates_nothing(database):
    database.desks.insert_many([{"t": 1}, {"t": 1}])
    with pytest.raises(DuplicateKeyError):
        database.desks.create_index("t", unique=True)
    assert "t_1" not in database.desks.index_information()
    database.desks.insert_one({"t": 1})


def test_delete_many_and_update_many_touch_every_match_once(database):
    database.desks.insert_many([{"n": n, "even": n % 2 == 0} for n in range(10)])
    assert database.desks.update_many({"even": True}, {"$inc": {"n": 100}}).modified_count == 5
    assert database.desks.delete_many({"n": {"$gte": 100}}).deleted_count == 5
    assert sorted(d["n"] for d in database.desks.find()) == [1, 3, 5, 7, 9]


def test_distinct_counts_numbers_equal_by_value_once(database):
    database.desks.insert_many([{"k": 1}, {"k": 1.0}, {"k": "1"}, {"k": [2, 3]}])
    assert sorted(map(str, database.desks.distinct("k"))) == ["1", "1", "2", "3"]


def test_readers_see_only_committed_states_while_writers_race(database):
    # Every committed state has width == 10 * version: a reader that ever sees another
    # combination saw a write half done.
    key = database.desks.insert_one({"version": 1, "width": 10}).inserted_id
    stop = threading.Event()
    torn: list[dict] = []

    def write() -> None:
        for version in range(2, 202):
            database.desks.update_one(
                {"_id": key}, {"$set": {"version": version, "width": 10 * version}}
            )
        stop.set()

    def read() -> None:
        while not stop.is_set():
            desk = database.desks.find_one({"_id": key})
            if desk["width"] != 10 * desk["version"]:
                torn.append(desk)

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert torn == []
    assert database.desks.find_one({"_id": key})["version"] == 201
