"""Multi-document transactions: the same contract on the embedded store and a replica set."""

from __future__ import annotations

import threading

import pytest
from pymongo.errors import BulkWriteError, DuplicateKeyError, InvalidOperation, OperationFailure

from embedded import EmbeddedClient

FAST = {"max_await_time_ms": 50}


def changes(stream, count):
    """Return the next `count` changes of `stream` (polling until they arrive)."""
    found = []
    for _ in range(200):
        change = stream.try_next()
        if change is not None:
            found.append(change)
        if len(found) == count:
            return found
    raise AssertionError(f"only {len(found)} of {count} changes arrived")


def test_a_transaction_commits_its_writes_together_and_in_order(database):
    database.desks.insert_one({"_id": "seed"})
    database.keys.insert_one({"_id": "seed"})
    with database.desks.watch(**FAST) as desks, database.keys.watch(**FAST) as keys:
        with database.client.start_session() as session:

            def both(session):
                database.desks.insert_one({"_id": 1}, session=session)
                database.keys.update_one({"_id": "seed"}, {"$set": {"k": 1}}, session=session)
                database.desks.insert_one({"_id": 2}, session=session)
                return "done"

            assert session.with_transaction(both) == "done"
        assert [c["documentKey"]["_id"] for c in changes(desks, 2)] == [1, 2]
        assert changes(keys, 1)[0]["updateDescription"]["updatedFields"] == {"k": 1}
    assert database.keys.find_one({"_id": "seed"}) == {"_id": "seed", "k": 1}


def test_a_transaction_whose_callback_raises_leaves_nothing(database):
    database.desks.insert_one({"_id": "seed"})
    with database.client.start_session() as session:

        def write_then_fail(session):
            database.desks.insert_one({"_id": 1}, session=session)
            raise ConnectionError("the process died here")

        with pytest.raises(ConnectionError):
            session.with_transaction(write_then_fail)
    assert database.desks.count_documents({}) == 1


def test_reads_in_a_transaction_see_its_own_writes_and_others_do_not(database, request):
    if request.node.callspec.params["database"] == "memory":
        pytest.skip("a :memory: store serialises every access: a reader waits for the commit")
    database.desks.insert_one({"_id": "seed"})
    seen_outside = []
    with database.client.start_session() as session, session.start_transaction():
        database.desks.insert_one({"_id": 1}, session=session)
        assert database.desks.count_documents({}, session=session) == 2
        reader = threading.Thread(
            target=lambda: seen_outside.append(database.desks.find_one({"_id": 1}))
        )
        reader.start()
        reader.join(10)
    assert seen_outside == [None]  # not committed when read from outside
    assert database.desks.count_documents({}) == 2


def test_a_failed_write_aborts_its_transaction_as_a_whole(database):
    database.desks.insert_one({"_id": 1})
    with database.client.start_session() as session:
        with pytest.raises(OperationFailure) as aborted, session.start_transaction():
            database.desks.insert_one({"_id": 2}, session=session)
            with pytest.raises(DuplicateKeyError):
                database.desks.insert_one({"_id": 1}, session=session)
            database.desks.insert_one({"_id": 3}, session=session)
    assert aborted.value.code == 251  # NoSuchTransaction: aborted by the failed write
    assert sorted(d["_id"] for d in database.desks.find()) == [1]


def test_a_write_error_insert_many_reports_aborts_its_transaction(database):
    database.desks.insert_one({"_id": "dup"})
    with database.client.start_session() as session:
        with pytest.raises(OperationFailure) as aborted, session.start_transaction():
            with pytest.raises(BulkWriteError):
                database.desks.insert_many(
                    [{"_id": "a"}, {"_id": "dup"}], ordered=False, session=session
                )
    assert aborted.value.code == 251
    assert [d["_id"] for d in database.desks.find()] == ["dup"]


def test_a_write_without_the_session_in_a_transactions_thread_is_refused(store_path):
    client = EmbeddedClient(store_path)
    desks = client["db"].desks
    with client.start_session() as session, session.start_transaction():
        desks.insert_one({"_id": 1}, session=session)
        # On MongoDB it would commit on its own; here it could only join the transaction.
        with pytest.raises(InvalidOperation, match="without the session"):
            desks.insert_one({"_id": 2})
    assert [d["_id"] for d in desks.find()] == [1]
    client.close()
