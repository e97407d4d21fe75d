"""The documented name rule (maxLength and pattern in the OpenAPI schema) is the one enforced."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError

from api.schemas import MAX_NAME_LENGTH, NAME_PATTERN, WHITESPACE, DeskCreateSchema

PATTERN = re.compile(NAME_PATTERN)
# Whitespace, controls, format and ignorable characters, letters: the edges. Lone surrogates
# are no Unicode text, so no JSON Schema string holds one: they are refused, tested apart.
EDGES = st.sampled_from(
    [*WHITESPACE, "\x00", "\x1f", "\x7f", "\x85", "\u200b", "\u202e", "\u00ad", "a", "é"]
)
TEXT = st.characters(exclude_categories=["Cs"])
NAMES = st.text(st.one_of(EDGES, TEXT), max_size=MAX_NAME_LENGTH + 3)


@settings(max_examples=500, deadline=None)
@given(name=NAMES)
def test_a_name_is_accepted_exactly_when_the_schema_says_it_is_valid(name):
    documented = len(name) <= MAX_NAME_LENGTH and PATTERN.fullmatch(name) is not None
    try:
        DeskCreateSchema().load({"name": name, "width": 1, "height": 1})
        accepted = True
    except ValidationError:
        accepted = False
    assert accepted == documented, repr(name)


def test_a_name_holding_a_lone_surrogate_is_refused():
    with pytest.raises(ValidationError):
        DeskCreateSchema().load({"name": "Mesa \ud800", "width": 1, "height": 1})


def test_every_argument_schema_is_built_once_not_per_request(app):
    # Given a class, webargs builds a schema for every request, deep-copying its fields (5%
    # of the API's samples in a profile). Given an instance, it loads with that one.
    parsed = []
    for view in app.view_functions.values():
        for method in ("get", "post", "put", "patch", "delete"):
            doc = getattr(getattr(getattr(view, "view_class", None), method, None), "_apidoc", {})
            for parameter in doc.get("arguments", {}).get("parameters", []):
                parsed.append(parameter["schema"])
                assert isinstance(parameter["schema"], Schema), (view.__name__, method)
    assert len(parsed) >= 7  # every endpoint that takes arguments was seen
