"""The event contract: what crosses watcher -> broadcaster -> clients, defined once.

Every client-facing message is one JSON object. Events carry `seq` (gap-free from 1, assigned
by the watcher): desk events, and `resync` when changes may have been missed. Control messages
(`hello`, `reset`) carry the log's head and epoch so a client can tell where it stands.
docs/events.md documents the same shapes for client authors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from desks.desk import desk_json, iso_utc

Json = dict[str, Any]

CREATED = "desk_created"
UPDATED = "desk_updated"
DELETED = "desk_deleted"
RESYNC = "resync"


class EventFormatError(ValueError):
    """A message does not follow the event contract."""


@dataclass(frozen=True)
class Event:
    """Something every client must see, numbered by the watcher."""

    type: ClassVar[str]
    seq: int
    at: str

    def to_json(self) -> Json:
        """Return the wire shape: a JSON object with `type` first."""
        return {"type": self.type, **asdict(self)}

    def encode(self) -> str:
        """Return the event as compact JSON text."""
        return json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Resync(Event):
    """Changes may have been missed (history lost, collection dropped): reload the snapshot."""

    type: ClassVar[str] = RESYNC
    reason: str = "history_lost"


@dataclass(frozen=True)
class DeskEvent(Event):
    """A committed change to one desk."""

    desk_id: str
    version: int
    desk: Json


@dataclass(frozen=True)
class DeskCreated(DeskEvent):
    """A desk was created; `desk` is the new desk."""

    type: ClassVar[str] = CREATED


@dataclass(frozen=True)
class DeskUpdated(DeskEvent):
    """A desk changed; `desk` is the desk after the change, `changes` what changed."""

    type: ClassVar[str] = UPDATED
    changes: Json = field(default_factory=dict)


@dataclass(frozen=True)
class DeskDeleted(DeskEvent):
    """A desk was deleted; `desk` is its last state, so consumers can name it."""

    type: ClassVar[str] = DELETED


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (DeskCreated, DeskUpdated, DeskDeleted, Resync)
}


def hello(head: int, epoch: str | None) -> str:
    """Return the first message a client receives: the log's head seq and identity."""
    return json.dumps({"type": "hello", "head": head, "epoch": epoch})


def reset(head: int, epoch: str | None) -> str:
    """Return the message telling a client its position is unknown: reload the snapshot."""
    return json.dumps({"type": "reset", "head": head, "epoch": epoch})


def decode(message: str | bytes | Mapping[str, Any]) -> Event:
    """Parse an event from JSON text or a mapping, raising EventFormatError when malformed."""
    try:
        data = json.loads(message) if isinstance(message, str | bytes) else dict(message)
    except (ValueError, UnicodeDecodeError) as error:
        raise EventFormatError(f"not JSON: {error}") from None
    if not isinstance(data, dict):
        raise EventFormatError("an event is a JSON object")
    cls = EVENT_TYPES.get(data.pop("type", None))
    if cls is None:
        raise EventFormatError("unknown event type")
    try:
        event = cls(**data)
    except TypeError as error:
        raise EventFormatError(f"bad fields: {error}") from None
    if not (isinstance(event.seq, int) and event.seq >= 1 and isinstance(event.at, str)):
        raise EventFormatError("seq must be a positive integer and at a string")
    if isinstance(event, DeskEvent) and not isinstance(event.desk, dict):
        raise EventFormatError("desk must be an object")
    return event


def from_change(
    change: Mapping[str, Any], seq: int, previous: Json | None = None
) -> DeskEvent | None:
    """Turn a desks change-stream event into the event with this seq (None: not a desk change).

    The desk comes from the post-image (`fullDocument`) or, for deletes, the pre-image
    (`fullDocumentBeforeChange`). Where MongoDB gave none, `previous` (the desk as last logged)
    stands in, with the update applied to it.
    """
    operation = change["operationType"]
    if operation not in {"insert", "update", "replace", "delete"}:
        return None
    desk_id = str(change["documentKey"]["_id"])
    wall = change.get("wallTime") or datetime.fromtimestamp(change["clusterTime"].time, UTC)
    at = iso_utc(wall)
    before = change.get("fullDocumentBeforeChange")
    if operation == "delete":
        desk = desk_json(before) if before is not None else dict(previous or {"id": desk_id})
        return DeskDeleted(seq, at, desk_id, int(desk.get("version", 0)), desk)
    after = change.get("fullDocument")
    if operation == "insert":
        if after is None:
            raise EventFormatError(f"insert of {desk_id} has no document")
        desk = desk_json(after)
        return DeskCreated(seq, at, desk_id, desk["version"], desk)
    changes = _changes(change.get("updateDescription"), before, after)
    if after is not None:
        desk = desk_json(after)
    else:
        desk = {"id": desk_id, **(previous or {}), **changes["set"]}
        for name in changes["removed"]:
            desk.pop(name, None)
    return DeskUpdated(seq, at, desk_id, int(desk.get("version", 0)), desk, changes)


def _changes(
    description: Mapping[str, Any] | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> Json:
    if description is not None:
        updated = dict(description.get("updatedFields", {}))
        removed = list(description.get("removedFields", []))
    else:  # a replace: every field may have changed
        after = after or {}
        updated = {k: v for k, v in after.items() if before is None or before.get(k) != v}
        removed = [k for k in before or {} if k not in after]
    updated.pop("_id", None)
    changes: Json = {"set": {k: _public(v) for k, v in updated.items()}, "removed": removed}
    if before is not None:
        changes["previous"] = {k: _public(before[k]) for k in updated if k in before}
    return changes


def _public(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value
