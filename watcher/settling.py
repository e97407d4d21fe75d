"""After a snapshot, until the stream has caught up: which changes the snapshot already shows.

The stream opens before the snapshot reads the desks, so a change made in between comes through
the stream after the snapshot, which may show it already. Logged again, it would contradict the
log: a desk created twice, a deletion or change of a desk no client was shown, a desk moved back
to an older version. Each such change is judged against the log as it stands where the change
belongs in stream order (the `frontier`), never against events logged after it: a change read
again after a restart is judged as it was the first time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from desks.event_log import EventLog
from desks.events import DELETED, DeskEvent, version_of


class Settling:
    """Judge changes against the log from a snapshot marker up to the frontier."""

    def __init__(self, events: EventLog, marker: int, frontier: int) -> None:
        self._events = events
        self.marker = marker  # the snapshot's marker seq
        self.frontier = frontier  # the seq of the last event, in stream order, passed so far
        self._desks: dict[str, tuple[bool, int]] = {}  # desk -> (held, version) at the frontier

    def passed(self, desk_id: str, seq: int) -> None:
        """Note an event already in the log for a change read again (logged at `seq`)."""
        self.frontier = max(self.frontier, seq)
        self._desks.pop(desk_id, None)  # read from the log up to the frontier when next asked

    def logged(self, event: DeskEvent) -> None:
        """Note an event logged now (in this batch: not in the store yet)."""
        self.frontier = event.seq
        self._desks[event.desk_id] = (event.type != DELETED, event.version)

    def contradicts(self, change: Mapping[str, Any], desk_id: str) -> bool:
        """Tell whether the log at the frontier already shows `change`: a creation of a desk
        it holds, a change or deletion of one it does not, an update to a version it holds
        already or a newer one."""
        if desk_id not in self._desks:
            self._desks[desk_id] = self._events.state_of(desk_id, self.marker, self.frontier)
        held, version = self._desks[desk_id]
        operation = change["operationType"]
        if operation == "insert":
            return held
        if not held:
            return True
        if operation in {"update", "replace"}:
            changed = version_of(change.get("fullDocument") or {})
            return 0 < changed <= version  # 0: no integer version to compare, log it
        return False
