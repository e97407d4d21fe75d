"""Change-stream pipelines of the shapes the product uses, run without mongomock.

Every event of a stream goes through its pipeline; mongomock's aggregation walks and copies
the whole event for each stage, which cost the log's followers more than reading the log.
A pipeline made only of `$match` on top-level string fields (a value, `$eq` or `$in` of
strings) and `$project` including top-level fields runs here; any other pipeline, and any
event whose matched field is not a string, goes to mongomock as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

Document = dict[str, Any]


class Unsure(Enum):
    """What a fast stage answers when it cannot decide an event the way MongoDB would."""

    UNSURE = "unsure"


UNSURE = Unsure.UNSURE
Stage = Callable[[Document], Document | None | Unsure]


def compile_pipeline(pipeline: Sequence[Mapping[str, Any]]) -> Stage | None:
    """Return a function running `pipeline` on one event (None: filtered out, UNSURE: ask
    mongomock), or None if the pipeline has another shape."""
    stages: list[Stage] = []
    for stage in pipeline:
        if len(stage) != 1:
            return None
        ((name, spec),) = stage.items()
        compiled = {"$match": _match, "$project": _project}.get(name, _other)(spec)
        if compiled is None:
            return None
        stages.append(compiled)

    def run(change: Document) -> Document | None | Unsure:
        for stage in stages:
            answer = stage(change)
            if answer is None or answer is UNSURE:
                return answer
            change = answer
        return change

    return run


def _other(_spec: Any) -> Stage | None:
    return None


def _match(spec: Any) -> Stage | None:
    if not isinstance(spec, Mapping) or not spec:
        return None
    wanted: dict[str, frozenset[str]] = {}
    for field, condition in spec.items():
        if not isinstance(field, str) or field.startswith("$") or "." in field:
            return None
        if isinstance(condition, str):
            wanted[field] = frozenset([condition])
        elif isinstance(condition, Mapping) and len(condition) == 1:
            ((operator, operand),) = condition.items()
            if operator == "$eq" and isinstance(operand, str):
                wanted[field] = frozenset([operand])
            elif (
                operator == "$in"
                and isinstance(operand, list | tuple)
                and all(isinstance(value, str) for value in operand)
            ):
                wanted[field] = frozenset(operand)
            else:
                return None
        else:
            return None

    def match(change: Document) -> Document | None | Unsure:
        for field, values in wanted.items():
            value = change.get(field)
            if not isinstance(value, str):
                return UNSURE  # absent, an array, another type: the full matcher decides
            if value not in values:
                return None
        return change

    return match


def _project(spec: Any) -> Stage | None:
    if not isinstance(spec, Mapping) or not spec:
        return None
    included = set()
    for field, value in spec.items():
        if not isinstance(field, str) or field.startswith("$") or "." in field:
            return None
        if value is True or (type(value) is int and value == 1):
            included.add(field)
        else:
            return None  # exclusions, expressions, _id: 0: the full projection decides
    included.add("_id")  # an inclusion keeps _id unless told otherwise

    def project(change: Document) -> Document:
        return {field: value for field, value in change.items() if field in included}

    return project
