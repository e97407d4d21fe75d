"""Embedded-only behaviour: bounded history, injected faults, threads."""

from __future__ import annotations

import threading

import pytest
from pymongo.errors import AutoReconnect, OperationFailure

from embedded import EmbeddedClient
from tests.conftest import wait_until

FAST = {"max_await_time_ms": 50}


def test_history_is_bounded_and_an_old_token_fails_with_286_at_watch(embedded):
    desks = embedded["db"].desks
    with desks.watch(**FAST) as stream:
        old = stream.resume_token
    for n in range(6):
        desks.insert_one({"n": n})
    with pytest.raises(OperationFailure) as error:
        desks.watch(resume_after=old, **FAST)
    assert error.value.code == 286
    assert error.value.has_error_label("NonResumableChangeStreamError")


def test_history_lost_after_watch_surfaces_from_the_first_poll_and_closes(embedded):
    desks = embedded["db"].desks
    stream = desks.watch(**FAST)
    desks.insert_one({"n": 1})
    embedded.oplog.forget_history()
    with pytest.raises(OperationFailure) as error:
        stream.try_next()
    assert error.value.code == 286
    assert not stream.alive


def test_one_resumable_error_is_resumed_transparently(embedded):
    desks = embedded["db"].desks
    with desks.watch(**FAST) as stream:
        desks.insert_one({"n": 1})
        embedded.oplog.inject_fault(AutoReconnect("connection reset"))
        assert stream.try_next()["fullDocument"]["n"] == 1


def test_two_resumable_errors_in_a_row_reach_the_caller_and_keep_the_stream(embedded):
    desks = embedded["db"].desks
    with desks.watch(**FAST) as stream:
        desks.insert_one({"n": 1})
        embedded.oplog.inject_fault(AutoReconnect("reset"))
        embedded.oplog.inject_fault(AutoReconnect("reset again"))
        with pytest.raises(AutoReconnect):
            stream.try_next()
        assert stream.alive
        assert stream.try_next()["fullDocument"]["n"] == 1


def test_a_fatal_error_closes_the_stream(embedded):
    desks = embedded["db"].desks
    stream = desks.watch(**FAST)
    embedded.oplog.inject_fault(OperationFailure("boom", 2))
    with pytest.raises(OperationFailure):
        stream.try_next()
    assert not stream.alive


def test_token_from_another_server_is_history_lost(embedded):
    other = EmbeddedClient()
    token = other["db"].desks.watch(**FAST).resume_token
    with pytest.raises(OperationFailure) as error:
        embedded["db"].desks.watch(resume_after=token, **FAST)
    assert error.value.code == 286


def test_token_from_the_future_fails_late_with_280(embedded):
    desks = embedded["db"].desks
    with desks.watch(**FAST) as stream:
        desks.insert_one({"n": 1})
        token = stream.try_next()["_id"]
    future = {"_data": token["_data"][:10] + f"{999:016X}" + "00"}
    stream = desks.watch(resume_after=future, **FAST)  # accepted at open, as MongoDB does
    with pytest.raises(OperationFailure) as error:
        stream.try_next()
    assert error.value.code == 280


def test_empty_polls_advance_the_token_on_a_quiet_collection():
    embedded = EmbeddedClient(noop_interval=0.05)
    with embedded["db"].desks.watch(**FAST) as stream:
        first = stream.resume_token
        wait_until(lambda: stream.try_next() is None and stream.resume_token != first)
    embedded.close()


def test_no_op_writes_stop_when_the_last_stream_closes():
    embedded = EmbeddedClient(noop_interval=0)

    def head() -> int:
        with embedded.engine.read() as connection:
            return embedded.oplog.head(connection)

    stream = embedded["db"].desks.watch(**FAST)
    wait_until(lambda: head() >= 3)  # idle: one no-op after another
    stream.close()
    wait_until(lambda: embedded.oplog.noops._thread is None)
    embedded.close()


def test_close_from_another_thread_wakes_a_blocked_reader(embedded):
    stream = embedded["db"].desks.watch(max_await_time_ms=60_000)
    result: list[object] = []
    reader = threading.Thread(target=lambda: result.append(stream.try_next()))
    reader.start()
    stream.close()
    reader.join(timeout=5)
    assert not reader.is_alive()
    assert result == [None]


def test_event_order_equals_commit_order_under_concurrent_writers():
    embedded = EmbeddedClient()
    desks = embedded["db"].desks
    key = desks.insert_one({"count": 0}).inserted_id
    stream = desks.watch(**FAST)

    def bump() -> None:
        for _ in range(100):
            desks.find_one_and_update({"_id": key}, {"$inc": {"count": 1}})

    writers = [threading.Thread(target=bump) for _ in range(4)]
    for writer in writers:
        writer.start()
    counts: list[int] = []

    def read_all() -> bool:
        while (change := stream.try_next()) is not None:
            counts.append(change["updateDescription"]["updatedFields"]["count"])
        return len(counts) == 400

    wait_until(read_all, timeout=30)
    for writer in writers:
        writer.join()
    assert counts == list(range(1, 401))


def test_required_pre_image_missing_is_an_error(embedded):
    desks = embedded["db"].desks
    key = desks.insert_one({"n": 1}).inserted_id
    stream = desks.watch(full_document_before_change="required", **FAST)
    desks.delete_one({"_id": key})
    with pytest.raises(OperationFailure) as error:
        stream.try_next()
    assert error.value.code == 47


def test_rename_emits_rename_then_invalidate(embedded):
    desks = embedded["db"].desks
    desks.insert_one({"n": 1})
    stream = desks.watch(**FAST)
    desks.rename("old_desks")
    rename = stream.try_next()
    assert rename["operationType"] == "rename"
    assert rename["to"] == {"db": "db", "coll": "old_desks"}
    assert stream.try_next()["operationType"] == "invalidate"
    assert not stream.alive


def test_unemulated_bulk_write_is_refused_rather_than_silent(embedded):
    with pytest.raises(NotImplementedError):
        embedded["db"].desks.bulk_write([])
