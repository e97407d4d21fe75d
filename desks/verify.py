"""Proof that the log explains the store: fold the event log, compare with the desks collection.

Folding applies each desk event in seq order: a created, updated or snapshot desk is as its
event shows it, a deleted one is gone, and a `snapshot` marker starts the registry afresh.
What remains must be exactly the `desks` collection, field by field, and the log must never
contradict itself on the way: seqs without a gap, no desk created twice, none changed or
deleted while the log does not hold it. Run it while writes are quiet: a write the watcher has
not logged yet is a difference.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from desks.desk import desk_json
from desks.event_log import EventLog
from desks.events import (
    DeskCreated,
    DeskDeleted,
    DeskEvent,
    DeskSnapshot,
    Event,
    Resync,
    Snapshot,
)
from desks.store import Store

Json = dict[str, Any]

PAGE = 10_000
COMPARED = ("name", "width", "height", "version", "created_at", "updated_at")


@dataclass
class Verdict:
    """What folding the log found against the store."""

    desks: int = 0  # desks in the store
    events: int = 0  # events folded
    differences: list[str] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        """Tell whether the log explains the store exactly."""
        return not self.differences


def fold(events: Iterable[Event]) -> tuple[dict[str, Json], int, list[int], list[str]]:
    """Return the desks the log leaves behind, how many events it read, the seqs of the
    resyncs no snapshot followed (changes before them may be missing from the log), and
    where the log contradicts itself (a gap in seqs; a desk created twice, or changed or
    deleted while the log does not hold it)."""
    desks: dict[str, Json] = {}
    count = 0
    resyncs: list[int] = []
    contradictions: list[str] = []
    for event in events:
        count += 1
        if event.seq != count:
            contradictions.append(f"seq {event.seq} is the log's event number {count}")
        if isinstance(event, Resync):
            resyncs.append(event.seq)
        elif isinstance(event, Snapshot):
            desks.clear()  # the desk_snapshot events that follow are the whole registry
            resyncs.clear()
        elif isinstance(event, DeskEvent):
            held = event.desk_id in desks
            if held == isinstance(event, DeskCreated | DeskSnapshot):
                state = "holds" if held else "does not hold"
                contradictions.append(
                    f"{event.type} of desk {event.desk_id} at seq {event.seq}: the log "
                    f"{state} that desk"
                )
            if isinstance(event, DeskDeleted):
                desks.pop(event.desk_id, None)
            else:
                desks[event.desk_id] = event.desk
    return desks, count, resyncs, contradictions


def read_log(log: EventLog) -> Iterator[Event]:
    """Yield every logged event in seq order, a page at a time."""
    after = 0
    while page := log.after(after, PAGE):
        yield from page
        after = page[-1].seq


def verify(store: Store) -> Verdict:
    """Fold the store's event log and compare what it yields with the desks collection."""
    folded, count, resyncs, contradictions = fold(read_log(EventLog(store.database)))
    verdict = Verdict(events=count, differences=contradictions)
    for seq in resyncs:
        verdict.differences.append(
            f"resync at seq {seq} without a snapshot: changes before it were never logged"
        )
    for document in store.desks.find():
        verdict.desks += 1
        stored = desk_json(document)
        logged = folded.pop(stored["id"], None)
        if logged is None:
            verdict.differences.append(f"extra desk {stored['id']}: in the store, not the log")
            continue
        for name in COMPARED:
            if stored.get(name) != logged.get(name):
                kind = "version" if name == "version" else f"field {name}"
                verdict.differences.append(
                    f"{kind} mismatch on desk {stored['id']}: store {stored.get(name)!r}, "
                    f"log {logged.get(name)!r}"
                )
    for desk_id in folded:
        verdict.differences.append(f"missing desk {desk_id}: in the log, not the store")
    return verdict
