"""The event contract: what crosses watcher -> broadcaster -> clients, defined once.

Every client-facing message is one JSON object. Events carry `seq` (gap-free from 1, assigned
by the watcher): desk events, and `resync` when changes may have been missed. Control messages
(`hello`, `reset`) carry the log's head and epoch so a client can tell where it stands.
docs/events.md documents the same shapes for client authors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any, ClassVar

from desks.bson_json import key_text, to_json
from desks.desk import desk_json, iso_utc

Json = dict[str, Any]

CREATED = "desk_created"
UPDATED = "desk_updated"
DELETED = "desk_deleted"
RESYNC = "resync"
SNAPSHOT = "snapshot"
DESK_SNAPSHOT = "desk_snapshot"
# The desk fields an event always carries, even reduced; what REST needs to fetch the rest.
KEPT_WHEN_REDUCED = ("id", "version", "created_at", "updated_at")
# A reduced event keeps any other desk field whose JSON is at most this long.
REDUCED_FIELD_BYTES = 1024


class EventFormatError(ValueError):
    """A message does not follow the event contract."""


@dataclass(frozen=True)
class Event:
    """Something every client must see, numbered by the watcher."""

    type: ClassVar[str]
    seq: int
    at: str

    def to_json(self) -> Json:
        """Return the wire shape: a JSON object with `type` first (sharing the event's values)."""
        # Not dataclasses.asdict: its deep copy was a seventh of the watcher's CPU per event,
        # and nothing changes an event's values (the event is frozen, its users read them).
        data: Json = {"type": self.type}
        for item in fields(self):
            data[item.name] = getattr(self, item.name)
        if data.get("looked_up") is False:
            del data["looked_up"]
        if data.pop("truncated", False):
            data.pop("changes", None)  # a reduced event: the desk must be fetched over REST
            data["truncated"] = True
        return data

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
    truncated: bool = False  # too large for clients: `changes` and large desk fields left out


@dataclass(frozen=True)
class DeskCreated(DeskEvent):
    """A desk was created; `desk` is the new desk."""

    type: ClassVar[str] = CREATED


@dataclass(frozen=True)
class DeskUpdated(DeskEvent):
    """A desk changed; `desk` is the desk after the change, `changes` what changed."""

    type: ClassVar[str] = UPDATED
    changes: Json = field(default_factory=dict)
    # `desk` was read after the change (MongoDB's updateLookup, without pre- and post-images):
    # it may hold later changes too, each with its own event after this one. On the wire only
    # when true.
    looked_up: bool = False


@dataclass(frozen=True)
class DeskDeleted(DeskEvent):
    """A desk was deleted; `desk` is its last state, so consumers can name it."""

    type: ClassVar[str] = DELETED


@dataclass(frozen=True)
class Snapshot(Event):
    """The store's desks follow, one `desk_snapshot` each: what came before is superseded."""

    type: ClassVar[str] = SNAPSHOT
    reason: str = "history_lost"  # the resync it completes


@dataclass(frozen=True)
class DeskSnapshot(DeskEvent):
    """One desk as it stood when a snapshot was taken (after a resync)."""

    type: ClassVar[str] = DESK_SNAPSHOT


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls for cls in (DeskCreated, DeskUpdated, DeskDeleted, Resync, Snapshot, DeskSnapshot)
}


def hello(head: int | None, epoch: str | None) -> str:
    """Return the first message a client receives: the log's head seq and identity.

    Both are None while the broadcaster does not follow a log yet; a second hello follows.
    """
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
    try:
        datetime.fromisoformat(event.at.replace("Z", "+00:00"))
    except ValueError:
        raise EventFormatError(f"at is not an ISO 8601 time: {event.at[:40]!r}") from None
    if isinstance(event, DeskEvent):
        if not isinstance(event.desk, dict) or not isinstance(event.desk_id, str):
            raise EventFormatError("desk must be an object and desk_id a string")
        if not isinstance(event.version, int) or isinstance(event.version, bool):
            raise EventFormatError("version must be an integer")
    if isinstance(event, DeskUpdated) and not isinstance(event.changes, dict):
        raise EventFormatError("changes must be an object")
    if isinstance(event, DeskUpdated) and not isinstance(event.looked_up, bool):
        raise EventFormatError("looked_up must be true or false")
    return event


def version_of(desk: Mapping[str, Any]) -> int:
    """Return a desk's integer version, 0 when it has none (written around the API)."""
    version = desk.get("version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def fit(event: Event, max_bytes: int) -> Event:
    """Return `event`, or its reduced form when its JSON exceeds `max_bytes` (docs/events.md)."""
    if not isinstance(event, DeskEvent) or len(event.encode().encode()) <= max_bytes:
        return event
    desk = {
        name: value
        for name, value in event.desk.items()
        if name in KEPT_WHEN_REDUCED
        or len(json.dumps(value, ensure_ascii=False).encode()) <= REDUCED_FIELD_BYTES
    }
    if isinstance(event, DeskUpdated):
        return replace(event, desk=desk, changes={}, truncated=True)
    return replace(event, desk=desk, truncated=True)


def from_change(
    change: Mapping[str, Any], seq: int, previous: Json | None = None, looked_up: bool = False
) -> DeskEvent | None:
    """Turn a desks change-stream event into the event with this seq (None: not a desk change).

    The desk comes from the post-image (`fullDocument`) or, for deletes, the pre-image
    (`fullDocumentBeforeChange`). Where MongoDB gave none, `previous` (the desk as last logged)
    stands in, with the update applied to it. `looked_up`: an update's `fullDocument` is
    updateLookup's (the desk when the change was read), and the event says so.
    """
    operation = change["operationType"]
    if operation not in {"insert", "update", "replace", "delete"}:
        return None
    desk_id = key_text(change["documentKey"]["_id"])
    wall = change.get("wallTime") or datetime.fromtimestamp(change["clusterTime"].time, UTC)
    at = iso_utc(wall)
    before = change.get("fullDocumentBeforeChange")
    if operation == "delete":
        desk = desk_json(before) if before is not None else dict(previous or {"id": desk_id})
        return DeskDeleted(seq, at, desk_id, version_of(desk), desk)
    after = change.get("fullDocument")
    if operation == "insert":
        if after is None:
            raise EventFormatError(f"insert of {desk_id} has no document")
        desk = desk_json(after)
        return DeskCreated(seq, at, desk_id, version_of(desk), desk)
    changes = _changes(change.get("updateDescription"), before, after)
    if after is not None:
        desk = desk_json(after)
    else:
        desk = {"id": desk_id, **(previous or {}), **changes["set"]}
        for name in changes["removed"]:
            desk.pop(name, None)
    # A replace carries its document whatever the mode: only an update's is looked up.
    looked_up = looked_up and operation == "update" and after is not None
    return DeskUpdated(
        seq, at, desk_id, version_of(desk), desk, changes=changes, looked_up=looked_up
    )


def _changes(
    description: Mapping[str, Any] | None,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
) -> Json:
    if description is not None:
        updated = dict(description.get("updatedFields", {}))
        removed = [str(name) for name in description.get("removedFields", [])]
    else:  # a replace: every field may have changed
        after = after or {}
        updated = {k: v for k, v in after.items() if before is None or before.get(k) != v}
        removed = [k for k in before or {} if k not in after]
    updated.pop("_id", None)
    changes: Json = {"set": to_json(updated), "removed": removed}
    if before is not None:
        changes["previous"] = to_json({k: before[k] for k in updated if k in before})
    return changes
