"""Index keys sort as MongoDB sorts values, so SQLite's byte order is MongoDB's order."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from bson import Decimal128, Int64, MaxKey, MinKey, ObjectId
from hypothesis import example, given
from hypothesis import strategies as st

from embedded import keys
from embedded.query import successor

numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(Int64),
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    .filter(lambda d: abs(d.adjusted()) < 6000)
    .map(lambda d: Decimal128(Decimal(f"{d:.30g}"))),
)


def exact(value):
    if isinstance(value, Decimal128):
        return Fraction(value.to_decimal())
    if isinstance(value, float) and math.isinf(value):
        return value
    return Fraction(value)


def compare(a, b) -> int:
    return (a > b) - (a < b)


@given(numbers, numbers)
def test_keys_order_numbers_of_any_type_by_exact_value(a, b):
    assert compare(keys.encode(a), keys.encode(b)) == compare(exact(a), exact(b))


@given(st.text(), st.text())
def test_keys_order_strings_by_their_utf8_bytes(a, b):
    assert compare(keys.encode(a), keys.encode(b)) == compare(a.encode(), b.encode())


@given(st.lists(st.integers(-5, 5) | st.text(max_size=3), min_size=2, max_size=2), st.booleans())
def test_keys_of_compound_fields_order_field_by_field_with_directions(pair, descending):
    a, b = pair
    direction = -1 if descending else 1
    left = keys.compound([a, "x"], [direction, 1])
    right = keys.compound([b, "y"], [direction, 1])
    first = compare(keys.encode(a), keys.encode(b)) * direction
    assert compare(left, right) == (first or -1)


def test_keys_of_equal_numbers_are_equal_across_types():
    assert len({keys.encode(v) for v in (1, 1.0, Int64(1), Decimal128("1.000"))}) == 1
    assert keys.encode(-0.0) == keys.encode(0)
    assert keys.encode(2**53) != keys.encode(2**53 + 1)


def test_keys_follow_the_bson_type_order():
    ordered = [
        MinKey(),
        None,
        float("nan"),
        float("-inf"),
        -1,
        0,
        2.5,
        float("inf"),
        "",
        "a",
        {"a": 1},
        [1],
        b"\x00",
        ObjectId("0" * 24),
        False,
        True,
        datetime(1969, 12, 31),
        datetime(2026, 1, 1),
        MaxKey(),
    ]
    encoded = [keys.encode(value) for value in ordered]
    assert encoded == sorted(encoded)


@given(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)),
)
def test_keys_order_dates_in_time(moment, later):
    if later <= datetime(9999, 12, 31) - moment:  # moment + later would overflow past it
        assert keys.encode(moment) < keys.encode(moment + later)


@given(st.text(), st.text())
def test_successor_bounds_every_key_with_that_prefix(prefix, rest):
    key = keys.encode(prefix)
    bound = successor(key)
    assert bound is not None and key < bound
    assert keys.encode(prefix) + keys.encode(rest) < bound


@given(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(10**34) + 1, 10**34 - 1)))
@example(10**28 + 1)  # 29 digits: abs() of a Decimal rounded it to 10**28's key
def test_an_integer_has_the_key_of_the_same_decimal(value):
    # Integers take a path of their own (no Decimal): the key must be the one numbers share.
    assert keys.encode(value) == keys.encode(Decimal128(str(value)))
    if -(2**63) <= value < 2**63:
        assert keys.encode(value) == keys.encode(Int64(value))
