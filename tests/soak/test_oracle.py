"""The soak's oracle fails when it should: each kind of loss or repetition it exists to catch."""

from __future__ import annotations

from desks.events import DeskCreated, DeskDeleted, DeskSnapshot, DeskUpdated, Resync, Snapshot
from tests.soak.oracle import HistoryLoss, Oracle
from tests.soak.writers import CREATED, PATCHED

AT = "2026-12-03T12:00:00.000Z"


def desk(desk_id, version, name="n"):
    return {"id": desk_id, "name": name, "version": version}


def created(seq, desk_id, name="n"):
    return DeskCreated(seq, AT, desk_id, 1, desk(desk_id, 1, name))


def updated(seq, desk_id, version, name="n"):
    return DeskUpdated(seq, AT, desk_id, version, desk(desk_id, version, name))


def write(op, desk_id, version, sent=100.0, acked=None):
    acked = sent if acked is None else acked
    return {"op": op, "desk": desk_id, "version": version, "sent": sent, "acked": acked}


STORE_WRITES = (write("create", "S", 1, sent=101.0),)  # after the others: never overtaken


def problems(log, http=(), store=STORE_WRITES, losses=()):
    oracle = Oracle(log, losses)
    oracle.judge_writes({"http": list(http), "store": list(store)})
    return oracle.problems


def test_a_log_with_every_acknowledged_write_once_passes():
    log = [created(1, "A"), updated(2, "A", 2), DeskDeleted(3, AT, "A", 2, desk("A", 2))]
    log.append(created(4, "S"))
    http = [write("create", "A", 1), write("update", "A", 2), write("delete", "A", 2)]
    assert problems(log, http) == []


def test_a_lost_or_repeated_write_is_named():
    log = [created(1, "A"), updated(2, "A", 3), created(3, "S")]
    http = [write("create", "A", 1), write("update", "A", 2)]
    assert problems(log, http) == [f"acknowledged {write('update', 'A', 2)}: lost"]
    twice = [created(1, "A"), updated(2, "A", 2), updated(3, "A", 2), created(4, "S")]
    assert f"acknowledged {write('update', 'A', 2)}: logged 2 times" in problems(
        twice, [write("update", "A", 2)]
    )


def test_one_key_making_two_desks_and_one_patch_logged_twice_are_named():
    key, patch = CREATED + "k1", PATCHED + "p1"
    log = [
        created(1, "A", key),  # the first attempt's desk, its answer lost
        created(2, "B", key),  # the retry's: a second desk for one key
        updated(3, "B", 2, patch),
        updated(4, "B", 3, patch),  # the same PATCH applied again by its retry
        created(5, "S"),
    ]
    found = problems(log, [write("create", "B", 1), write("update", "B", 3)])
    assert found == ["Idempotency-Key k1 made 2 desks", "one PATCH of desk B logged 2 times"]


def test_versions_going_back_and_a_writer_kind_with_nothing_acknowledged_are_named():
    log = [created(1, "A"), updated(2, "A", 3), updated(3, "A", 2)]
    found = problems(log, [write("create", "A", 1)], store=())
    assert found[0] == "desk A: desk_updated of version 2 at seq 3 after version 3"
    assert found[-1] == "the store writers had no write acknowledged"


def test_a_write_the_history_lost_is_excused_only_if_the_snapshot_shows_it():
    log = [
        created(1, "A"),
        Resync(2, AT),
        Snapshot(3, AT),
        DeskSnapshot(4, AT, "A", 3, desk("A", 3)),
        DeskSnapshot(5, AT, "S", 1, desk("S", 1)),
    ]
    loss = HistoryLoss(began=100.0, settled=110.0, head=1)
    shown = write("update", "A", 3, sent=105.0)  # made while the watchers were down
    assert problems(log, [write("create", "A", 1), shown], losses=[loss]) == []
    newer = write("update", "A", 4, sent=105.0)  # the snapshot does not show version 4
    assert problems(log, [newer], losses=[loss]) == [f"acknowledged {newer}: lost"]
    later = write("update", "A", 3, sent=120.0)  # after the loss settled: must be logged
    assert problems(log, [later], losses=[loss]) == [f"acknowledged {later}: lost"]


def test_each_write_is_judged_by_the_snapshot_of_its_own_history_loss():
    log = [
        created(1, "A"),
        Resync(2, AT),
        Snapshot(3, AT),  # the first loss: A at version 1, B never made
        DeskSnapshot(4, AT, "A", 1, desk("A", 1)),
        DeskSnapshot(5, AT, "S", 1, desk("S", 1)),
        created(6, "B"),  # logged between the losses
        Resync(7, AT),
        Snapshot(8, AT),  # the second: A at version 2
        DeskSnapshot(9, AT, "A", 2, desk("A", 2)),
        DeskSnapshot(10, AT, "S", 1, desk("S", 1)),
        DeskSnapshot(11, AT, "B", 1, desk("B", 1)),
    ]
    losses = [HistoryLoss(100.0, 110.0, head=1), HistoryLoss(200.0, 210.0, head=6)]
    b = write("create", "B", 1, sent=150.0)
    # Not shown by the first snapshot, and committed before B's creation, which the stream
    # did hand over: the second snapshot showing it does not excuse it.
    early = write("update", "A", 2, sent=105.0)
    assert problems(log, [write("create", "A", 1), b, early], losses=losses) == [
        f"acknowledged {early}: lost"
    ]
    assert problems(log, [b, write("update", "A", 2, sent=205.0)], losses=losses) == []


def test_a_write_waiting_for_a_watcher_when_history_went_is_excused_one_overtaken_is_not():
    log = [
        created(1, "A"),
        created(2, "B"),
        Resync(3, AT),
        Snapshot(4, AT),
        DeskSnapshot(5, AT, "A", 2, desk("A", 2)),
        DeskSnapshot(6, AT, "B", 1, desk("B", 1)),
        DeskSnapshot(7, AT, "S", 1, desk("S", 1)),
    ]
    loss = HistoryLoss(began=100.0, settled=110.0, head=2)
    known = [write("create", "A", 1, sent=80.0)]
    store = [write("create", "S", 1, sent=99.0)]  # never logged: waiting too
    # Acknowledged 10 s before the loss began, and nothing logged before it was sent later:
    # the watchers were behind, the snapshot carries it.
    waiting = write("update", "A", 2, sent=89.0, acked=90.0)
    assert problems(log, [*known, write("create", "B", 1, sent=85.0), waiting], store, [loss]) == []
    # B's creation, logged before the loss, was sent after the update was acknowledged: the
    # update committed first, so the stream skipped it.
    overtaken = write("update", "A", 2, sent=89.0, acked=90.0)
    later_b = write("create", "B", 1, sent=95.0)
    assert problems(log, [*known, later_b, overtaken], store, [loss]) == [
        f"acknowledged {overtaken}: lost"
    ]
