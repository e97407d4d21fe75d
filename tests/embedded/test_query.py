"""Query plans: filters and sorts use indexes, so their cost does not grow with the collection."""

from __future__ import annotations

import bson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pymongo import ASCENDING, DESCENDING

from embedded import EmbeddedClient, documents, engine, planner, query

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

    def counting(*args, **kwargs):
        for row in original(*args, **kwargs):
            looked_at.append(row[1]["_id"])
            yield row

    original = query.scan
    monkeypatch.setattr(query, "scan", counting)
    desks.update_one({"_id": 321, "created_at": {"$in": [160]}}, {"$set": {"x": 1}})
    desks.find_one_and_delete({"token": "t322"})
    desks.update_one({"_id": 323, "plain": 323}, {"$set": {"x": 1}})  # plain is checked
    assert looked_at == [321, 322, 323]
    assert desks.find_one({"_id": 323})["x"] == 1


def test_count_of_an_exact_filter_reads_no_document(desks, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an exact count read documents")

    monkeypatch.setattr(query, "scan", refuse)
    assert desks.count_documents({"desk_id": 7, "_id": {"$gt": 1000, "$lte": 2000}}) == 10
    assert desks.count_documents({"desk_id": {"$in": [1, 2]}}) == 100
    assert desks.count_documents({"desk_id": 7}, skip=45, limit=3) == 3
    assert desks.count_documents({"_id": {"$gte": SIZE}}) == 1


def test_a_filter_beyond_the_index_is_still_checked(desks):
    plan, run = stats(desks.find({"desk_id": 7, "plain": {"$gt": 4000}}))
    assert plan["indexName"] == "desk_id_1__id_-1"
    assert run["totalDocsExamined"] == 50 and run["nReturned"] == 10
    assert desks.count_documents({"desk_id": 7, "plain": {"$gt": 4000}}) == 10


values = st.sampled_from([-1, 0, 1, 0.5, float("inf"), float("nan"), "", "a", "b", None])
bounds = st.sampled_from([-1, 0, 1, 0.5, float("inf"), "a", "b"])
conditions = st.one_of(
    values,
    st.builds(lambda v: {"$eq": v}, values),
    st.builds(lambda vs: {"$in": vs}, st.lists(values, min_size=1, max_size=3)),
    st.dictionaries(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), bounds, min_size=1),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.fixed_dictionaries({}, optional={"a": values, "b": values}), max_size=12),
    filter=st.fixed_dictionaries({}, optional={"a": conditions, "b": conditions}),
)
@example(rows=[{"a": float("nan")}], filter={"a": {"$lt": 1}})  # NaN sorts below numbers
@example(rows=[{"a": float("nan")}], filter={"a": float("nan")})
@example(rows=[{"a": 1, "b": "a"}, {"a": 1.0}], filter={"a": {"$in": [1, "a"]}, "b": None})
def test_exact_plans_answer_what_the_matcher_answers(rows, filter):
    client = EmbeddedClient()
    try:
        collection = client["db"]["c"]
        collection.create_index([("a", ASCENDING), ("b", DESCENDING)])
        if rows:
            collection.insert_many([{"_id": n, **row} for n, row in enumerate(rows)])
        # Round-tripped as stored: a NaN read back is another float object than the filter's.
        stored = [bson.decode(bson.encode({"_id": n, **row})) for n, row in enumerate(rows)]
        matched = [d["_id"] for d in stored if documents.match(filter, d)]
        assert sorted(d["_id"] for d in collection.find(filter)) == matched
        assert collection.count_documents(filter) == len(matched)
    finally:
        client.close()


LONG = 9600  # rows of the long-scan collection: many batches of query.SCAN_BATCH


@pytest.fixture(scope="module")
def long_scan():
    """A collection read through connections that count SQLite's steps (progress handler)."""
    steps = [0]
    connect = engine.Engine._connect

    def counting(self):
        connection = connect(self)
        connection.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), 100)
        return connection

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.Engine, "_connect", counting)
        client = EmbeddedClient()
    collection = client["db"]["scan"]
    collection.create_index([("k", ASCENDING), ("_id", ASCENDING)])  # three rows a key
    collection.create_index("u", unique=True)
    collection.insert_many({"_id": n, "k": n // 3, "u": n} for n in range(LONG))
    yield collection, steps
    client.close()


# (sort, filter of `size` rows, their ids in order, the index read): every kind of index
# (ids, a secondary index with equal keys across batches, a unique one), both ways, with
# the range's bound on the side the scan resumes from and on the other side.
SCANS = [
    ([("_id", 1)], lambda s: {"_id": {"$lt": s}}, lambda s: range(s), "_id_"),
    ([("_id", 1)], lambda s: {"_id": {"$gte": LONG - s}}, lambda s: range(LONG - s, LONG), "_id_"),
    ([("_id", -1)], lambda s: {"_id": {"$lt": s}}, lambda s: range(s - 1, -1, -1), "_id_"),
    (
        [("_id", -1)],
        lambda s: {"_id": {"$gte": LONG - s}},
        lambda s: range(LONG - 1, LONG - s - 1, -1),
        "_id_",
    ),
    ([("k", 1), ("_id", 1)], lambda s: {"k": {"$lt": s // 3}}, lambda s: range(s), "k_1__id_1"),
    (
        [("k", -1), ("_id", -1)],
        lambda s: {"k": {"$gte": (LONG - s) // 3}},
        lambda s: range(LONG - 1, LONG - s - 1, -1),
        "k_1__id_1",
    ),
    ([("u", 1)], lambda s: {"u": {"$gte": LONG - s}}, lambda s: range(LONG - s, LONG), "u_1"),
    ([("u", -1)], lambda s: {"u": {"$lt": s}}, lambda s: range(s - 1, -1, -1), "u_1"),
]


@pytest.mark.parametrize(("sort", "within", "ids", "index"), SCANS)
def test_a_long_scan_reads_each_row_once_however_many_batches(long_scan, sort, within, ids, index):
    """Each batch resumes at the row after the last one read, never stepping over earlier rows:
    reading four times the rows costs about four times the SQLite steps (it was quadratic),
    and every row of the range comes once, in order, none from outside it."""
    collection, steps = long_scan
    cost = {}
    for size in (LONG // 4, LONG):
        plan, _ = stats(collection.find(within(size)).sort(sort))
        assert plan["indexName"] == index
        steps[0] = 0
        found = [document["_id"] for document in collection.find(within(size)).sort(sort)]
        cost[size] = steps[0]
        assert found == list(ids(size))
    assert cost[LONG] < 6 * cost[LONG // 4], cost


fields = st.sampled_from(["a", "b", "_id"])
sorts = st.lists(st.tuples(fields, st.sampled_from([1, -1])), max_size=2)


@settings(max_examples=300, deadline=None)
@given(filter=st.fixed_dictionaries({}, optional={"a": conditions, "b": conditions}), sort=sorts)
def test_the_planner_chooses_as_if_it_had_tried_every_index(filter, sort):
    # plan() skips an index whose first field the filter does not name and the sort does not
    # start with (it pins nothing, bounds nothing, gives no order): the choice is unchanged.
    indexes = (
        planner.Index(1, "a_1_b_-1", (("a", 1), ("b", -1)), False, False),
        planner.Index(2, "b_1", (("b", 1),), False, False),
        planner.Index(3, "b_1_a_1", (("b", 1), ("a", 1)), True, False),
    )
    best = None
    for index in (planner.ID, *indexes):  # every index tried, scored as plan() scores them
        candidate = planner._plan_index(index, filter, sort)
        if candidate is None:
            continue
        tried, pinned, ranged = candidate
        score = (pinned * 2 + ranged, int(tried.sorted), int(index.unique))
        if (pinned or ranged or (sort and tried.sorted)) and (best is None or score > best[0]):
            best = (score, tried)
    expected = best[1] if best else planner.Plan(None, sorted=not sort, exact=not filter)
    assert planner.plan(planner.Collection(9, "db", "c", False, indexes), filter, sort) == expected
