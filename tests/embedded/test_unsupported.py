"""What the embedded store does not do fails loudly, naming it, and changes nothing."""

from __future__ import annotations

import pytest
from pymongo import UpdateOne
from pymongo.errors import InvalidOperation, OperationFailure

from embedded import EmbeddedClient


@pytest.fixture
def desks():
    client = EmbeddedClient()
    yield client["db"]["desks"]
    client.close()


def test_unsupported_bulk_write_names_itself(desks):
    with pytest.raises(NotImplementedError, match="bulk_write"):
        desks.bulk_write([UpdateOne({}, {"$set": {"a": 1}})])


@pytest.mark.parametrize("stage", ["$out", "$merge"])
def test_unsupported_aggregate_stages_that_write_are_refused(desks, stage):
    desks.insert_one({"n": 1})
    with pytest.raises(NotImplementedError, match=f"\\{stage}"):
        desks.aggregate([{"$match": {}}, {stage: "elsewhere"}])
    assert desks.database.list_collection_names() == ["desks"]


def test_a_session_of_another_client_is_refused(desks):
    with pytest.raises(InvalidOperation, match="another client"):
        desks.insert_one({"n": 1}, session=object())
    assert desks.count_documents({}) == 0


def test_unsupported_update_options_are_refused(desks):
    desks.insert_one({"a": [1, 2]})
    with pytest.raises(NotImplementedError, match="array_filters"):
        desks.update_one({}, {"$set": {"a.$[x]": 0}}, array_filters=[{"x": 1}])
    assert desks.find_one({}, {"_id": 0}) == {"a": [1, 2]}


def test_unsupported_index_types_are_refused(desks):
    with pytest.raises(NotImplementedError, match="text"):
        desks.create_index([("name", "text")])


def test_unsupported_multikey_index_refuses_an_array_and_stores_nothing(desks):
    desks.create_index("tags")
    with pytest.raises(NotImplementedError, match="multikey"):
        desks.insert_one({"tags": ["a", "b"]})
    assert desks.count_documents({}) == 0


def test_unsupported_commands_are_not_found(desks):
    with pytest.raises(OperationFailure) as error:
        desks.database.command("serverStatus")
    assert error.value.code == 59


def test_aggregate_without_writing_stages_runs(desks):
    desks.insert_many([{"k": "a", "n": 1}, {"k": "a", "n": 2}, {"k": "b", "n": 5}])
    totals = desks.aggregate(
        [{"$match": {"n": {"$gt": 0}}}, {"$group": {"_id": "$k", "n": {"$sum": "$n"}}}]
    )
    assert sorted((t["_id"], t["n"]) for t in totals) == [("a", 3), ("b", 5)]
