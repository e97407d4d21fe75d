"""The checkpoint: throttled saves, a flush on a clean stop, forced saves when it matters."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from watcher.checkpoint import Checkpoint
from watcher.lease import Lease, LeaseLost


def token(n: int) -> dict[str, str]:
    return {"_data": f"{n:04X}"}


def test_checkpoint_saves_at_most_once_per_interval_until_flushed(store):
    checkpoint = Checkpoint(store.database, interval=3600)
    checkpoint.save(token(1))
    checkpoint.save(token(2))
    checkpoint.save(token(3))
    assert Checkpoint(store.database).load() == token(1)
    checkpoint.flush()
    assert Checkpoint(store.database).load() == token(3)


def test_checkpoint_forced_save_is_immediate(store):
    checkpoint = Checkpoint(store.database, interval=3600)
    checkpoint.save(token(1))
    checkpoint.save(token(2), force=True)
    assert Checkpoint(store.database).load() == token(2)


def test_a_snapshot_still_settling_is_saved_with_the_token_and_survives_a_restart(store):
    checkpoint = Checkpoint(store.database, interval=0)
    checkpoint.settling_after = 41
    checkpoint.save(token(1))
    reloaded = Checkpoint(store.database)
    assert (reloaded.load(), reloaded.settling_after) == (token(1), 41)
    checkpoint.settling_after = None  # settled: saved with the next token
    checkpoint.save(token(2))
    reloaded.load()
    assert reloaded.settling_after is None


def test_checkpoint_start_over_is_saved_at_once_and_owes_a_resync(store):
    checkpoint = Checkpoint(store.database, interval=3600)
    checkpoint.save(token(1))
    checkpoint.save(token(2))
    checkpoint.start_over("history_lost")
    checkpoint.flush()  # nothing pending survives a start over
    reloaded = Checkpoint(store.database)
    assert reloaded.load() is None
    assert reloaded.resync_reason == "history_lost"


def test_a_holder_that_lost_the_lease_can_neither_move_the_checkpoint_nor_owe_a_resync(store):
    old = Lease(store.database, "old", ttl=0.2)
    assert old.acquire()
    stale = Checkpoint(store.database, lease=old)
    stale.save(token(1), force=True)
    wait_until(lambda: old.holder() is None, timeout=5)  # it paused past its expiry
    new = Lease(store.database, "new", ttl=60)
    assert new.acquire() and new.term == old.term + 1
    Checkpoint(store.database, lease=new).save(token(2), force=True)

    with pytest.raises(LeaseLost):
        stale.save(token(3), force=True)
    with pytest.raises(LeaseLost):
        stale.start_over("history_lost")  # would make the next start skip changes
    reloaded = Checkpoint(store.database)
    assert reloaded.load() == token(2)
    assert reloaded.resync_reason is None


def test_the_lease_term_rises_with_each_holder_and_stays_with_renewals(store):
    a, b = Lease(store.database, "a", 60), Lease(store.database, "b", 60)
    assert a.acquire() and a.term == 1
    assert a.acquire() and a.term == 1
    a.release()
    assert b.acquire() and b.term == 2
    assert not a.acquire() and a.term == 1
    b.release()
    assert a.acquire() and a.term == 3
