"""Index keys sort as MongoDB sorts values, so SQLite's byte order is MongoDB's order."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from bson import Decimal128, Int64, MaxKey, MinKey, ObjectId
from hypothesis import example, given
from hypothesis import strategies as st

from embedded import keys
from embedded.planner import successor

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


# Keys as store files hold them (taken before integers had a path of their own): a change
# to any of them needs a new store format, or lookups in existing files miss.
STORED_KEYS = [
    (1, "0a0580010200"),
    (-1, "0a037ffefdff"),
    (10, "0a0580020200"),
    (-250, "0a037ffcfcf9ff"),
    (120, "0a058003020300"),
    (2**63 - 1, "0a0580130a03030404080301040709060508080609010800"),
    (-(2**63), "0a037fecf5fcfcfbfbf7fcfefbf8f6f9faf7f7f9f6fef6ff"),
    (10**27 + 5, "0a05801c0201010101010101010101010101010101010101010101010101010600"),
    (0.1, "0a0580000201010101010101010101010101010101060606020202060203040200"),
    (-123.456, "0a037ffcfdfcfbfaf9f8fefefefefefefefefefefefbfef8f5f9fafaf8fdf6f9ff"),
    (1e-300, "0a057ed50201010101010101010101010101010101030601060a010a0209040600"),
    (Decimal128("10000000000000000000000000001"), "0a05801d0200"),  # rounded to 28 digits
    (10**28 + 1, "0a05801d0200"),
]


@pytest.mark.parametrize(("value", "key"), STORED_KEYS)
def test_keys_are_the_ones_store_files_hold(value, key):
    assert keys.encode(value).hex() == key


@given(st.integers(-(10**28) + 1, 10**28 - 1))
@example(2**63 - 1)
@example(-(10**27) * 7)
def test_an_integer_has_the_key_of_the_same_decimal(value):
    # Integers take a path of their own (no Decimal): the key must be the one numbers share.
    assert keys.encode(value) == keys.encode(Decimal128(str(value)))
    if -(2**63) <= value < 2**63:
        assert keys.encode(value) == keys.encode(Int64(value))
