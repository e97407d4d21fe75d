"""Query planning: which index narrows a filter, over which key ranges, in which order.

A plan uses the leading fields of one index that the filter pins to values (equality, `$in`)
and a range (`$gt`, `$lte`, ...) on the next field, within one BSON type as MongoDB's type
bracketing does; it also serves the sort when the index order is the sort order. An index
narrows: the documents a scan yields are checked against the whole filter by mongomock's
matcher, unless the plan is exact (the key ranges say all the filter says, on scalar values),
when neither matching nor reading documents is needed to count (MongoDB's COUNT_SCAN).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bson import Decimal128, Regex

from embedded import keys
from embedded.catalog import ID, Collection, Index

_MAX_POINTS = 1000  # $in lists longer than this are scanned, not looked up one by one
_RANGE_OPERATORS = {"$gt", "$gte", "$lt", "$lte"}


@dataclass(frozen=True)
class Plan:
    """How to read a query: a scan of one index over key ranges, or of the whole collection."""

    index: Index | None  # None: a collection scan in record order
    ranges: tuple[tuple[bytes, bytes | None], ...] = ()  # [low, high) key ranges, ascending
    reverse: bool = False
    sorted: bool = False  # the scan order is the requested sort order
    exact: bool = False  # every key in the ranges matches the filter, and no other key does

    @property
    def stage(self) -> str:
        """Name the plan as MongoDB's explain() does."""
        if self.index is None:
            return "COLLSCAN"
        return "IXSCAN"


def plan(
    collection: Collection, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]]
) -> Plan:
    """Choose the cheapest scan that answers `filter` (and, if it can, `sort`)."""
    best: tuple[tuple[int, int, int], Plan] | None = None
    for index in (ID, *collection.indexes):
        if index.sparse:
            continue  # it leaves documents out: only a filter excluding null could use it
        lead = index.fields[0][0]
        if lead not in filter and not (sort and sort[0][0] == lead):
            continue  # it neither pins, bounds nor orders by its first field: it cannot win
        candidate = _plan_index(index, filter, sort)
        if candidate is None:
            continue
        plan_, pinned, ranged = candidate
        score = (pinned * 2 + ranged, int(plan_.sorted), int(index.unique))
        if (pinned or ranged or (sort and plan_.sorted)) and (best is None or score > best[0]):
            best = (score, plan_)
    if best is not None:
        return best[1]
    return Plan(None, sorted=not sort, exact=not filter)


def _plan_index(
    index: Index, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]]
) -> tuple[Plan, int, int] | None:
    prefixes: list[bytes] = [b""]
    pinned = fixed = 0
    range_bounds: tuple[bytes, bytes] | None = None
    used: set[str] = set()
    scalar = True
    for position, (path, direction) in enumerate(index.fields):
        condition = filter.get(path, _ABSENT)
        points = _points(condition)
        if points is not None:
            used.add(path)
            # The matcher decides sub-documents (their keys are field-order sensitive) and NaN.
            scalar = scalar and not any(isinstance(p, Mapping) or _nan(p) for p, _ in points)
            encoded = [key if direction > 0 else keys.invert(key) for _, key in points]
            prefixes = [p + e for p, e in itertools.product(prefixes, sorted(set(encoded)))]
            if len(prefixes) > _MAX_POINTS:
                return None
            pinned += 1
            fixed += int(len(points) == 1 and fixed == position)
            continue
        range_bounds = _range(condition, direction)
        if range_bounds is not None:
            used.add(path)
        break
    ranges: list[tuple[bytes, bytes | None]] = []
    for prefix in prefixes:
        if range_bounds is not None:
            ranges.append((prefix + range_bounds[0], prefix + range_bounds[1]))
        elif prefix:
            ranges.append((prefix, successor(prefix)))
    if not ranges:
        ranges = [(b"", None)]
    order = _order(index, fixed, filter, sort)
    reverse = order == -1
    exact = scalar and used == set(filter) and not index.sparse
    plan_ = Plan(index, tuple(sorted(ranges)), reverse, sorted=order != 0, exact=exact)
    return plan_, pinned, int(range_bounds is not None)


def _order(
    index: Index, fixed: int, filter: Mapping[str, Any], sort: Sequence[tuple[str, int]]
) -> int:
    """Return 1 if the index order is the sort order, -1 if reversed, 0 if neither."""
    pinned_fields = {path for path, _ in index.fields[:fixed]}
    wanted = [(path, direction) for path, direction in sort if path not in pinned_fields]
    if not wanted:
        return 1
    rest = list(index.fields[fixed:])
    if len(wanted) > len(rest):
        return 0
    if all(w == r for w, r in zip(wanted, rest, strict=False)):
        return 1
    if all(w[0] == r[0] and w[1] == -r[1] for w, r in zip(wanted, rest, strict=False)):
        return -1
    return 0


_ABSENT = object()


def _plain(value: Any) -> bool:
    """Tell whether equality with `value` is equality of index keys."""
    return _key(value) is not None


def _key(value: Any) -> bytes | None:
    """Return the (ascending) index key that equality with `value` is equality of, if any."""
    if isinstance(value, list | tuple | re.Pattern | Regex):
        return None  # arrays match elements; patterns are regex matches
    if isinstance(value, Mapping) and (
        any(str(key).startswith("$") for key in value)
        or not all(_plain(item) for item in value.values())
    ):
        return None
    try:
        return keys.encode(value)
    except keys.UnindexableValue:
        return None


def _points(condition: Any) -> list[tuple[Any, bytes]] | None:
    """Return the values (and their keys) a condition pins a field to, if it pins it."""
    if condition is _ABSENT:
        return None
    key = _key(condition)
    if key is not None:
        return [(condition, key)]
    if isinstance(condition, Mapping) and len(condition) == 1:
        ((operator, operand),) = condition.items()
        if operator == "$eq" and (key := _key(operand)) is not None:
            return [(operand, key)]
        if operator == "$in" and isinstance(operand, list | tuple) and operand:
            if len(operand) > _MAX_POINTS:
                return None
            keyed = [_key(item) for item in operand]  # each value encoded once
            points = [(item, key) for item, key in zip(operand, keyed, strict=True) if key]
            if len(points) == len(operand):
                return points
    return None


def _range(condition: Any, direction: int) -> tuple[bytes, bytes] | None:
    """Return [low, high) key bounds for $gt/$gte/$lt/$lte within one BSON type, if any."""
    if not isinstance(condition, Mapping) or not condition:
        return None
    if not set(condition) <= _RANGE_OPERATORS:
        return None
    bounds = {op: value for op, value in condition.items() if _plain(value) and value is not None}
    if len(bounds) != len(condition) or any(_nan(value) for value in bounds.values()):
        return None
    classes = {keys.type_class(value) for value in bounds.values()}
    if len(classes) != 1:
        return None
    (type_byte,) = classes
    low, high = bytes([type_byte]), keys.class_end(type_byte)
    if type_byte == keys.NUMBER:
        low = keys.encode(float("-inf"))  # NaN sorts below it and is never $lt or $gt a number
    for operator, value in bounds.items():
        encoded = keys.encode(value)
        if operator == "$gt":
            low = max(low, successor(encoded) or low)
        elif operator == "$gte":
            low = max(low, encoded)
        elif operator == "$lt":
            high = min(high, encoded)
        else:
            high = min(high, successor(encoded) or high)
    if direction > 0:
        return low, high
    # Descending keys are inverted bytes: the range flips around.
    return _inverted_bound(high), _inverted_bound(low)


def _nan(value: Any) -> bool:
    if isinstance(value, float):
        return value != value
    return isinstance(value, Decimal128) and value.to_decimal().is_nan()


def _inverted_bound(bound: bytes) -> bytes:
    # For a prefix-free key set, k >= b  <=>  invert(k) <= invert(b); as a half-open bound on
    # inverted keys, "<= invert(b)" over keys that start with invert(b) is < successor(...).
    inverted = keys.invert(bound)
    return successor(inverted) or inverted


def successor(key: bytes) -> bytes | None:
    """Return the smallest key greater than every key that starts with `key` (None: none)."""
    stripped = key.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
