"""The checkpoint: throttled saves, a flush on a clean stop, forced saves when it matters."""

from __future__ import annotations

from watcher.checkpoint import Checkpoint


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


def test_checkpoint_start_over_is_saved_at_once_and_owes_a_resync(store):
    checkpoint = Checkpoint(store.database, interval=3600)
    checkpoint.save(token(1))
    checkpoint.save(token(2))
    checkpoint.start_over("history_lost")
    checkpoint.flush()  # nothing pending survives a start over
    reloaded = Checkpoint(store.database)
    assert reloaded.load() is None
    assert reloaded.resync_reason == "history_lost"
