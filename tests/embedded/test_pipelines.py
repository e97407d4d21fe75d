"""The change-stream pipelines run without mongomock answer what mongomock answers."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from mongomock.aggregate import process_pipeline

from embedded.pipelines import UNSURE, compile_pipeline

FIELDS = ["operationType", "documentKey", "ns", "fullDocument", "other"]
strings = st.sampled_from(["insert", "update", "delete", "replace", "drop", ""])
values = st.one_of(
    strings,
    st.integers(-2, 2),
    st.none(),
    st.lists(strings, max_size=2),
    st.fixed_dictionaries({"_id": st.integers(0, 3)}),
)
changes = st.fixed_dictionaries(
    {"_id": st.fixed_dictionaries({"_data": st.text("0123456789abcdef", min_size=1)})},
    optional={field: values for field in FIELDS},
)
conditions = st.one_of(
    strings,
    st.builds(lambda v: {"$eq": v}, strings),
    st.builds(lambda vs: {"$in": vs}, st.lists(strings, min_size=1, max_size=3)),
    st.builds(lambda v: {"$ne": v}, strings),  # another shape: mongomock runs it
    st.integers(0, 1),
)
matches = st.builds(
    lambda spec: {"$match": spec},
    st.dictionaries(st.sampled_from(FIELDS), conditions, min_size=1, max_size=2),
)
projections = st.builds(
    lambda spec: {"$project": spec},
    st.dictionaries(st.sampled_from([*FIELDS, "_id"]), st.sampled_from([1, True]), min_size=1),
)


@settings(max_examples=400, deadline=None)
@given(change=changes, pipeline=st.lists(st.one_of(matches, projections), min_size=1, max_size=3))
def test_a_compiled_pipeline_answers_what_mongomock_answers(change, pipeline):
    expected = list(process_pipeline([change], None, pipeline, None))
    compiled = compile_pipeline(pipeline)
    if compiled is None:
        return  # another shape: mongomock runs it
    answer = compiled(change)
    if answer is UNSURE:
        return  # the stream asks mongomock for this one
    assert ([answer] if answer is not None else []) == expected


def test_the_pipelines_the_product_opens_are_compiled():
    ring = [{"$match": {"operationType": "insert"}}, {"$project": {"documentKey": 1}}]
    crud = [{"$match": {"operationType": {"$in": ["insert", "update", "replace", "delete"]}}}]
    assert compile_pipeline(ring) is not None and compile_pipeline(crud) is not None
    change = {"_id": {"_data": "01"}, "operationType": "insert", "documentKey": {"_id": 7}}
    ring_of = compile_pipeline(ring)
    assert ring_of({**change, "fullDocument": {"_id": 7}}) == {
        "_id": {"_data": "01"},
        "documentKey": {"_id": 7},
    }
    assert ring_of({**change, "operationType": "delete"}) is None


def test_other_shapes_are_left_to_mongomock():
    for pipeline in (
        [{"$match": {"operationType": {"$ne": "insert"}}}],
        [{"$match": {"fullDocument.name": "Mesa"}}],
        [{"$project": {"documentKey": 0}}],
        [{"$project": {"_id": 0, "documentKey": 1}}],
        [{"$addFields": {"x": 1}}],
    ):
        assert compile_pipeline(pipeline) is None, pipeline
