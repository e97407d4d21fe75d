"""Query plans: filters and sorts use indexes, so their cost does not grow with the collection."""

from __future__ import annotations

import pytest
from pymongo import ASCENDING, DESCENDING

from embedded import EmbeddedClient, documents

SIZE = 5000


@pytest.fixture(scope="module")
def desks():
    client = EmbeddedClient()
    collection = client["db"]["desks"]
    collection.create_index("token", unique=True)
    collection.create_index([("created_at", ASCENDING), ("_id", ASCENDING)])
    collection.create_index([("desk_id", ASCENDING), ("_id", DESCENDING)])
    collection.insert_many(
        {"_id": n, "token": f"t{n}", "created_at": n // 2, "desk_id": n % 100, "plain": n}
        for n in range(1, SIZE + 1)
    )
    yield collection
    client.close()


def stats(cursor):
    explained = cursor.explain()
    return explained["queryPlanner"]["winningPlan"], explained["executionStats"]


def test_query_by_id_reads_one_document(desks):
    plan, run = stats(desks.find({"_id": 1234}))
    assert plan["indexName"] == "_id_"
    assert (run["nReturned"], run["totalDocsExamined"]) == (1, 1)


def test_query_by_unique_field_reads_one_document(desks):
    plan, run = stats(desks.find({"token": "t77"}))
    assert plan["indexName"] == "token_1"
    assert (run["nReturned"], run["totalDocsExamined"]) == (1, 1)


def test_query_range_on_id_in_order_reads_only_the_range(desks):
    plan, run = stats(desks.find({"_id": {"$gt": SIZE - 10}}).sort("_id", ASCENDING))
    assert plan["indexName"] == "_id_" and plan["direction"] == "forward"
    assert run["nReturned"] == run["totalDocsExamined"] == 10


def test_first_page_in_index_order_reads_only_the_page(desks):
    cursor = desks.find({}).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(10)
    plan, run = stats(cursor)
    assert plan["indexName"] == "created_at_1__id_1"
    assert run["totalDocsExamined"] == 10


def test_newest_first_reads_the_index_backwards(desks):
    plan, run = stats(desks.find({}).sort("_id", DESCENDING).limit(1))
    assert plan["direction"] == "backward"
    assert run["totalDocsExamined"] == 1


def test_equality_then_sort_on_the_next_index_field_needs_no_sort(desks):
    cursor = desks.find({"desk_id": 42}).sort("_id", DESCENDING).limit(1)
    plan, run = stats(cursor)
    assert plan["indexName"] == "desk_id_1__id_-1"
    assert run["totalDocsExamined"] == 1
    assert next(desks.find({"desk_id": 42}).sort("_id", DESCENDING).limit(1))["_id"] == 4942


def test_in_list_on_id_reads_each_listed_document(desks):
    plan, run = stats(desks.find({"_id": {"$in": [5, 500, 4000, 99999]}}))
    assert plan["indexName"] == "_id_"
    assert (run["nReturned"], run["totalDocsExamined"]) == (3, 3)


def test_unindexed_filter_scans_the_collection(desks):
    plan, run = stats(desks.find({"plain": 3}))
    assert plan["stage"] == "COLLSCAN"
    assert run["totalDocsExamined"] == SIZE


def test_writes_by_id_look_at_one_document(desks, monkeypatch):
    looked_at = []

    def counting(filter, document):
        looked_at.append(document["_id"])
        return original(filter, document)

    original = documents.match
    monkeypatch.setattr(documents, "match", counting)
    desks.update_one({"_id": 321, "created_at": {"$in": [160]}}, {"$set": {"x": 1}})
    desks.find_one_and_delete({"token": "t322"})
    assert looked_at == [321, 322]
