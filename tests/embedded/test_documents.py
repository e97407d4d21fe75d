"""Projections: the engine's own path for top-level fields answers what mongomock answers."""

from __future__ import annotations

import copy

from hypothesis import given
from hypothesis import strategies as st

from embedded import documents

names = st.sampled_from(["_id", "a", "b", "c"])
document = st.dictionaries(names, st.one_of(st.integers(), st.dictionaries(names, st.integers())))
projection = st.dictionaries(names, st.sampled_from([0, 1, True, False]), min_size=1)


@given(document, projection)
def test_top_level_projections_match_mongomock(document, projection):
    kept = {name for name in projection if name != "_id"}
    if len({bool(projection[name]) for name in kept}) > 1:
        return  # mixed inclusion and exclusion: left to mongomock, which refuses it
    expected = documents._OPERATORS._copy_only_fields(
        copy.deepcopy(document), copy.deepcopy(projection), dict
    )
    projected = documents.project(document, projection)
    assert projected == expected
    assert list(projected) == [name for name in document if name in projected]  # its order
