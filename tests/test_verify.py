"""`desks verify`: the log must explain the store, and never contradict itself on the way."""

from __future__ import annotations

from desks.events import DeskCreated, DeskDeleted, DeskUpdated, Resync, Snapshot
from desks.verify import fold

AT = "2026-12-03T12:00:00.000Z"


def desk(n: int, version: int = 1) -> dict:
    return {"id": f"{n:024x}", "name": f"Desk {n}", "version": version}


def created(seq: int, n: int) -> DeskCreated:
    return DeskCreated(seq, AT, desk(n)["id"], 1, desk(n))


def test_a_consistent_log_folds_without_contradiction():
    log = [
        created(1, 1),
        DeskUpdated(2, AT, desk(1)["id"], 2, desk(1, 2)),
        DeskDeleted(3, AT, desk(1)["id"], 2, desk(1, 2)),
        created(4, 1),  # created again after its deletion: consistent
        Resync(5, AT),
        Snapshot(6, AT),
    ]
    desks, count, resyncs, contradictions = fold(log)
    assert (desks, count, resyncs, contradictions) == ({}, 6, [], [])


def test_gaps_double_creations_and_changes_to_unknown_desks_are_named():
    log = [
        created(1, 1),
        created(2, 1),  # the log holds it already
        DeskDeleted(4, AT, desk(2)["id"], 1, desk(2)),  # a gap, and a desk never held
        DeskUpdated(5, AT, desk(3)["id"], 2, desk(3, 2)),  # never held either
    ]
    contradictions = fold(log)[3]
    assert contradictions == [
        f"desk_created of desk {desk(1)['id']} at seq 2: the log holds that desk",
        "seq 4 is the log's event number 3",
        f"desk_deleted of desk {desk(2)['id']} at seq 4: the log does not hold that desk",
        "seq 5 is the log's event number 4",
        f"desk_updated of desk {desk(3)['id']} at seq 5: the log does not hold that desk",
    ]
