"""One-document operations borrowed from mongomock: matching, updates, projections, sort keys.

The engine stores and indexes; mongomock's query language evaluates. Its update operators are
methods of its Collection that work on one document in place, so a collection that never
holds data lends them to us, with the original filter (which positional `$` updates need).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from functools import cmp_to_key
from typing import Any

import mongomock
from bson import Decimal128, ObjectId
from mongomock import filtering, helpers
from pymongo.errors import OperationFailure, WriteError

Document = dict[str, Any]

# Never holds a document: only its stateless per-document methods are used.
_OPERATORS: Any = mongomock.MongoClient()["embedded"]["operators"]
_MISSING = object()


def match(filter: Mapping[str, Any], document: Document) -> bool:
    """Tell whether `document` matches the query `filter`."""
    return bool(filtering.filter_applies(filter, document))


def prepare_filter(filter: Mapping[str, Any] | None) -> Document:
    """Validate a filter and store-normalise its datetimes (UTC, milliseconds)."""
    if filter is None:
        return {}
    if not isinstance(filter, Mapping):
        raise TypeError(
            "filter must be an instance of dict, bson.son.SON, or any other type that "
            "inherits from collections.Mapping"
        )
    prepared: Document = helpers.patch_datetime_awareness_in_document(dict(filter))
    filtering.filter_applies(prepared, {})  # raises on an unknown operator, before any work
    return prepared


_ABSENT = object()


def _check_arithmetic(document: Document, update: Mapping[str, Any]) -> None:
    """Refuse $inc and $mul on a field that holds no number, with MongoDB's TypeMismatch."""
    for operator in ("$inc", "$mul"):
        for path in update.get(operator) or {}:
            value: Any = document
            for part in str(path).split("."):
                value = value.get(part, _ABSENT) if isinstance(value, Mapping) else _ABSENT
            if value is _ABSENT:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal128):
                raise WriteError(
                    f"Cannot apply {operator} to a value of non-numeric type. {{_id: "
                    f"{document.get('_id')!r}}} has the field '{path}' of non-numeric type "
                    f"{type(value).__name__}",
                    14,
                )


def apply_update(
    document: Document, filter: Mapping[str, Any], update: Any, inserting: bool
) -> Document:
    """Return `document` with an update (operators or pipeline) applied; it stays unchanged."""
    if isinstance(update, Mapping):
        _check_arithmetic(document, update)
    updated = copy.deepcopy(document)
    update = helpers.patch_datetime_awareness_in_document(update)
    try:
        if isinstance(update, list):
            _OPERATORS._apply_update_pipeline(updated, update, None)
        else:
            _OPERATORS._apply_update_document(updated, dict(filter), update, inserting)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise WriteError(f"cannot apply the update: {error}", 2) from None
    if "_id" in document and updated.get("_id", _MISSING) != document["_id"]:
        raise WriteError(
            "Performing an update on the path '_id' would modify the immutable field '_id'", 66
        )
    return id_first(updated)


def replace(document: Document, replacement: Mapping[str, Any]) -> Document:
    """Return the replacement of `document`, keeping its _id (which may not change)."""
    if "_id" in replacement and replacement["_id"] != document["_id"]:
        raise WriteError(
            "After applying the update, the (immutable) field '_id' was found to have been altered",
            66,
        )
    replaced = helpers.patch_datetime_awareness_in_document(dict(replacement))
    return {"_id": document["_id"], **{k: v for k, v in replaced.items() if k != "_id"}}


def upsert_seed(filter: Mapping[str, Any], update: Any, replacing: bool) -> Document:
    """Return the document an upsert inserts: the filter's equalities, then the update."""
    seed, _ = _OPERATORS._discard_operators(_OPERATORS._expand_dots(dict(filter)))
    seed = _plain(seed)
    if replacing:
        key = update.get("_id", seed.get("_id", ObjectId()))
        return replace({"_id": key}, update)
    document = apply_update(seed, filter, update, inserting=True)
    return id_first(document) if "_id" in document else {"_id": ObjectId(), **document}


def project(document: Document, projection: Any) -> Document:
    """Return the fields of `document` that `projection` asks for."""
    return projector(projection)(document)


def projector(projection: Any) -> Callable[[Document], Document]:
    """Return what projects each document as `projection` asks: read once for a cursor's
    many documents."""
    if projection is None:
        return lambda document: document
    simple = _top_level(projection)
    if simple is not None:
        including, fields, with_id = simple
        if including:  # fields in the document's order, as MongoDB returns them
            if with_id:
                fields = fields | {"_id"}
            return lambda document: {
                name: value for name, value in document.items() if name in fields
            }
        if not with_id:
            fields = fields | {"_id"}
        return lambda document: {
            name: value for name, value in document.items() if name not in fields
        }

    def full(document: Document) -> Document:
        spec = copy.deepcopy(projection)  # mongomock pops keys out of the spec as it projects
        projected: Document = _OPERATORS._copy_only_fields(document, spec, dict)
        return projected

    return full


def _top_level(projection: Any) -> tuple[bool, set[str], bool] | None:
    """Read a projection naming top-level fields only, all included or all excluded (the
    common case, done here without mongomock's deep copies): (including, fields, with _id)."""
    if not isinstance(projection, Mapping):
        return None
    with_id = True
    fields: set[str] = set()
    flags: set[bool] = set()
    for name, value in projection.items():
        if type(value) not in (int, bool) or value not in (0, 1):
            return None
        if name == "_id":
            with_id = bool(value)
            continue
        if not isinstance(name, str) or "." in name or name.startswith("$"):
            return None
        fields.add(name)
        flags.add(bool(value))
    if len(flags) > 1:
        return None  # mixed: mongomock raises as MongoDB does
    # {"_id": 0} alone excludes _id; {"_id": 1} alone keeps only _id.
    including = flags.pop() if flags else with_id
    return including, fields, with_id


def sort_rows(
    rows: list[tuple[int, Document]], spec: Sequence[tuple[str, int]]
) -> list[tuple[int, Document]]:
    """Sort (record id, document) rows as MongoDB sorts documents (BSON order, field by field)."""

    def compare(a: tuple[int, Document], b: tuple[int, Document]) -> int:
        for field, direction in spec:
            left = filtering.resolve_sort_key(field, a[1])
            right = filtering.resolve_sort_key(field, b[1])
            if left < right:
                return -direction
            if right < left:
                return direction
        return 0

    return sorted(rows, key=cmp_to_key(compare))


def id_first(document: Mapping[str, Any]) -> Document:
    """Return the document with _id as its first field, as a server stores it."""
    if "_id" not in document or next(iter(document)) == "_id":
        return dict(document)
    return {"_id": document["_id"], **{k: v for k, v in document.items() if k != "_id"}}


def check_keys(document: Mapping[str, Any]) -> None:
    """Refuse top-level field names MongoDB refuses in stored documents."""
    for name in document:
        if not isinstance(name, str):
            raise TypeError(f"documents must have only string keys, key was {name!r}")
        if name.startswith("$"):
            raise OperationFailure(f"Document can't have $ prefixed field names: {name}", 2)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value
