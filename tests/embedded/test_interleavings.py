"""Races forced step by step: each test drives the exact interleaving that once lost a write."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from embedded import EmbeddedClient


def test_catalog_a_write_uses_is_the_one_its_own_transaction_read(store_path, monkeypatch):
    client = EmbeddedClient(store_path)
    things = client["db"].things
    things.insert_one({"x": 0})
    # A reader's snapshot from before the index exists, still open (a long find, a slow page).
    stale = sqlite3.connect(store_path, isolation_level=None)
    stale.execute("BEGIN")
    stale.execute("SELECT count(*) FROM meta").fetchone()
    things.create_index("x", unique=True)
    things.insert_one({"x": 1})
    catalog = client.catalog
    original = catalog.refresh
    interleaved: list[bool] = []

    def refresh_then_old_snapshot_reads(connection: Any) -> Any:
        found = original(connection)
        if connection is client.engine._writer and not interleaved:
            # Between the writer reading the catalog and using it, the old snapshot reads it.
            interleaved.append(True)
            catalog.get(stale, "db", "things")
        return found

    monkeypatch.setattr(catalog, "refresh", refresh_then_old_snapshot_reads)
    try:
        with pytest.raises(DuplicateKeyError):
            things.insert_one({"x": 1})
    finally:
        monkeypatch.undo()
        stale.execute("COMMIT")
        stale.close()
    assert interleaved
    assert things.count_documents({"x": 1}) == 1
    assert sum(1 for document in things.find() if document["x"] == 1) == 1
    client.close()


def test_a_commit_from_another_process_between_two_reads_of_a_poll_is_never_skipped(
    store_path, monkeypatch
):
    # A no-op on every empty poll and no wait: the old stream wrote one, then read the head
    # again in a new snapshot and jumped over what committed in between.
    reader = EmbeddedClient(store_path, noop_interval=0)
    writer = EmbeddedClient(store_path)
    stream = reader["db"].desks.watch(max_await_time_ms=0)
    committed: list[Any] = []
    wanted = 40
    original = reader.engine.read
    polling = threading.current_thread()

    @contextlib.contextmanager
    def read_then_another_process_commits() -> Iterator[sqlite3.Connection]:
        with original() as connection:
            yield connection
        # After every read transaction of the stream's thread (not of the no-op writer's).
        if threading.current_thread() is polling and len(committed) < wanted:
            committed.append(writer["db"].desks.insert_one({"n": len(committed)}).inserted_id)

    monkeypatch.setattr(reader.engine, "read", read_then_another_process_commits)
    seen: list[Any] = []
    for _ in range(wanted * 20):
        change = stream.try_next()
        if change is not None:
            seen.append(change["documentKey"]["_id"])
        if len(seen) == wanted:
            break
    monkeypatch.undo()
    stream.close()
    reader.close()
    writer.close()
    assert len(committed) == wanted
    assert seen == committed  # every commit, once, in commit order
