"""The soak's oracle: what the writers were told and what the clients saw, against the log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from desks.events import DeskEvent, DeskSnapshot, Event
from tests.soak.writers import CREATED, PATCHED


@dataclass(frozen=True)
class HistoryLoss:
    """A fault that dropped the store's history while every watcher was down."""

    began: float  # time.time() when the watchers were killed
    settled: float  # when the resync's snapshot had settled (nothing more to judge)
    head: int  # the log's head when it began: its snapshot comes after


KINDS = {"create": "desk_created", "update": "desk_updated", "delete": "desk_deleted"}
Key = tuple[str, str, int | None]  # (event type, desk, version)


class Oracle:
    """Judge writes and clients against the event log; `problems` says what it found."""

    def __init__(self, log: Sequence[Event], history_losses: Sequence[HistoryLoss]) -> None:
        self._log = log
        self._losses = history_losses
        self._snapshots = _snapshots(log)
        self._horizons: list[float] = []
        self.problems: list[str] = []

    def judge_writes(self, writes: Mapping[str, Iterable[Mapping[str, Any]]]) -> Counter[str]:
        """Judge each writer kind's acknowledged writes; return how many of each."""
        acknowledged: Counter[str] = Counter()
        logged = self._logged()
        self._horizons = self._logged_before_losses(writes)
        for kind, kind_writes in writes.items():
            for write in kind_writes:
                acknowledged[f"{kind} {write['op']}s"] += 1
                count = logged[_write_key(write)]
                if count == 1 or (count == 0 and self._shown_by_snapshot(write)):
                    continue
                what = "lost" if count == 0 else f"logged {count} times"
                self.problems.append(f"acknowledged {dict(write)}: {what}")
            if not any(key.startswith(kind) for key in acknowledged):
                self.problems.append(f"the {kind} writers had no write acknowledged")
        self._judge_names()
        return acknowledged

    def judge_client(self, seen: Iterable[tuple[int, str, str | None, int | None]]) -> None:
        """Judge what one client received: each (seq, type, desk, version) as the log has it."""
        by_seq = {event.seq: event for event in self._log}
        for seq, kind, desk_id, version in seen:
            logged = by_seq.get(seq)
            shown = (kind, desk_id, version)
            expected = (
                (logged.type, getattr(logged, "desk_id", None), getattr(logged, "version", None))
                if logged is not None
                else None
            )
            if shown != expected:
                self.problems.append(f"a client got {shown} as seq {seq}; the log has {expected}")

    def _logged(self) -> Counter[Key]:
        """Count each (type, desk, version) logged; check each desk's versions only rise (a
        snapshot may state the version a desk is at again, nothing may go back)."""
        logged: Counter[Key] = Counter()
        newest: dict[str, int] = {}
        for event in self._log:
            if not isinstance(event, DeskEvent):
                continue
            key = _event_key(event)
            logged[key] += 1
            version = key[2]
            if version is None:
                continue
            before = newest.get(event.desk_id, 0)
            if version < before or (version == before and event.type != "desk_snapshot"):
                self.problems.append(
                    f"desk {event.desk_id}: {event.type} of version {version} at seq "
                    f"{event.seq} after version {before}"
                )
            newest[event.desk_id] = version
        return logged

    def _logged_before_losses(
        self, writes: Mapping[str, Iterable[Mapping[str, Any]]]
    ) -> list[float]:
        """For each history loss, the latest time a write logged before it was sent.

        A write acknowledged before then committed before that one, and a change stream
        hands changes over in commit order: had it not been skipped, it would have been
        logged before the loss too. Only a write acknowledged later may have been waiting
        (watchers down or behind) when the history went.
        """
        first_seq: dict[Key, int] = {}
        for event in self._log:
            if isinstance(event, DeskEvent) and event.type != "desk_snapshot":
                first_seq.setdefault(_event_key(event), event.seq)
        sent_at: list[tuple[int, float]] = []
        for kind_writes in writes.values():
            for write in kind_writes:
                seq = first_seq.get(_write_key(write))
                if seq is not None:
                    sent_at.append((seq, write["sent"]))
        return [
            max((sent for seq, sent in sent_at if seq <= loss.head), default=float("-inf"))
            for loss in self._losses
        ]

    def _shown_by_snapshot(self, write: Mapping[str, Any]) -> bool:
        """Tell whether a write missing from the log is one a lost history explains: still
        waiting for a watcher when the history was dropped (acknowledged after every write
        logged before the loss was sent) or made before the resync's snapshot settled, and
        shown by that snapshot (the desk at that version or newer; gone, for a deletion, or
        deleted meanwhile). Losses close together overlap: any of them may explain it."""
        for n, loss in enumerate(self._losses):
            if not (write["acked"] > self._horizons[n] and write["sent"] <= loss.settled):
                continue
            # The snapshot that settled it: the last one logged after the loss began and
            # before the next (a watcher killed mid-snapshot logs a whole one again).
            until = self._losses[n + 1].head if n + 1 < len(self._losses) else float("inf")
            desks = next(
                (
                    shown
                    for marker, shown in reversed(self._snapshots)
                    if loss.head < marker <= until
                ),
                None,
            )
            if desks is None:
                continue
            shown = desks.get(write["desk"])
            if write["op"] == "delete" and shown is None:
                return True
            if write["op"] != "delete" and (shown is None or shown >= write["version"]):
                return True
        return False

    def _judge_names(self) -> None:
        """No Idempotency-Key made two desks; no PATCH was logged twice (HTTP writers give
        each key and each PATCH a name of its own)."""
        created: dict[str, set[str]] = {}
        patched: Counter[tuple[str, str]] = Counter()
        for event in self._log:
            name = event.desk.get("name") if isinstance(event, DeskEvent) else None
            if not isinstance(name, str):
                continue
            if name.startswith(CREATED) and event.type in ("desk_created", "desk_snapshot"):
                created.setdefault(name, set()).add(event.desk_id)
            if name.startswith(PATCHED) and event.type == "desk_updated":
                patched[(event.desk_id, name)] += 1
        for name, desks in created.items():
            if len(desks) > 1:
                key = name.removeprefix(CREATED)
                self.problems.append(f"Idempotency-Key {key} made {len(desks)} desks")
        for (desk_id, _name), count in patched.items():
            if count > 1:
                self.problems.append(f"one PATCH of desk {desk_id} logged {count} times")


def _event_key(event: DeskEvent) -> Key:
    # A deletion is known by its desk: unacknowledged changes may have come before it.
    return (event.type, event.desk_id, None if event.type == "desk_deleted" else event.version)


def _write_key(write: Mapping[str, Any]) -> Key:
    """The key of the event an acknowledged write must have made."""
    version = None if write["op"] == "delete" else write["version"]
    return (KINDS[write["op"]], write["desk"], version)


def _snapshots(log: Iterable[Event]) -> list[tuple[int, dict[str, int]]]:
    """Return each snapshot in the log: its marker's seq, the desks it shows at their versions."""
    snapshots: list[tuple[int, dict[str, int]]] = []
    for event in log:
        if event.type == "snapshot":
            snapshots.append((event.seq, {}))
        elif isinstance(event, DeskSnapshot):
            snapshots[-1][1][event.desk_id] = event.version
    return snapshots
