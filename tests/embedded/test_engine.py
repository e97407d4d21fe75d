"""The SQLite engine: durable across restarts and kill -9, shared by processes, never 'locked'."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from pymongo.errors import AutoReconnect

from embedded import EmbeddedClient, writers
from embedded.engine import Engine, StoreFormatError
from embedded.fairlock import FairLock
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    """Start a Python process running `code` with the repository importable."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_engine_file_store_keeps_documents_tokens_and_epoch_across_reopening(store_path):
    first = EmbeddedClient(store_path)
    with first["db"].desks.watch(max_await_time_ms=50) as stream:
        first["db"].desks.insert_one({"_id": 1})
        token = stream.try_next()["_id"]
    first["db"].desks.insert_one({"_id": 2})
    epoch = first.engine.epoch
    first.close()

    second = EmbeddedClient(store_path)
    assert second.engine.epoch == epoch
    assert [d["_id"] for d in second["db"].desks.find()] == [1, 2]
    with second["db"].desks.watch(resume_after=token, max_await_time_ms=50) as resumed:
        assert resumed.try_next()["documentKey"] == {"_id": 2}
    second.close()


def test_engine_acknowledged_writes_survive_kill_9(store_path):
    writer = python(
        """
        import sys
        from embedded import EmbeddedClient
        desks = EmbeddedClient(sys.argv[1])["db"].desks
        n = 0
        while True:
            n += 1
            desks.insert_one({"_id": n, "pad": "x" * 500})
            print(n, flush=True)  # acknowledged
        """,
        store_path,
    )
    assert writer.stdout is not None
    acknowledged = 0
    for line in writer.stdout:
        acknowledged = int(line)
        if acknowledged >= 300:
            break
    writer.kill()  # SIGKILL: no chance to flush or close anything
    # Lines printed before the kill but not read yet were acknowledged too.
    rest, _ = writer.communicate()
    acknowledged = max([acknowledged, *(int(line) for line in rest.split())])
    client = EmbeddedClient(store_path)
    stored = [d["_id"] for d in client["db"].desks.find()]
    assert stored[:acknowledged] == list(range(1, acknowledged + 1))
    assert len(stored) in (acknowledged, acknowledged + 1)  # the last may commit unacknowledged
    client.close()


def test_engine_a_commit_in_another_process_wakes_a_waiting_stream(store_path):
    client = EmbeddedClient(store_path)
    # Without a wake-up this poll would return None only after 30 s.
    with client["db"].desks.watch(max_await_time_ms=30_000) as stream:
        writer = python(
            """
            import sys
            from embedded import EmbeddedClient
            EmbeddedClient(sys.argv[1])["db"].desks.insert_one({"from": "elsewhere"})
            """,
            store_path,
        )
        change = stream.try_next()
        _, stderr = writer.communicate(timeout=30)
        assert writer.returncode == 0, stderr
    assert change is not None and change["fullDocument"]["from"] == "elsewhere"
    client.close()


def test_engine_writers_in_several_processes_all_commit_and_are_never_locked_out(store_path):
    EmbeddedClient(store_path).close()  # create the file first: no race to initialise it
    code = """
        import sys
        from embedded import EmbeddedClient
        desks = EmbeddedClient(sys.argv[1])["db"].desks
        for n in range(150):
            desks.insert_one({"writer": sys.argv[2], "n": n})
            desks.update_one({"writer": sys.argv[2], "n": n}, {"$set": {"done": True}})
        """
    writers = [python(code, store_path, str(w)) for w in range(4)]
    results = [writer.communicate(timeout=120) for writer in writers]
    for writer, (_, stderr) in zip(writers, results, strict=True):
        assert writer.returncode == 0, stderr
        assert "locked" not in stderr
    client = EmbeddedClient(store_path)
    assert client["db"].desks.count_documents({"done": True}) == 600
    client.close()


def test_engine_memory_stores_are_private_to_their_client():
    first, second = EmbeddedClient(), EmbeddedClient()
    first["db"].desks.insert_one({"n": 1})
    assert second["db"].desks.count_documents({}) == 0
    assert first.engine.epoch != second.engine.epoch


def test_engine_refuses_a_file_of_another_format(store_path):
    EmbeddedClient(store_path).close()
    with sqlite3.connect(store_path) as connection:
        connection.execute("UPDATE meta SET value = 99 WHERE key = 'format'")
    with pytest.raises(StoreFormatError, match="format 99"):
        EmbeddedClient(store_path)


def test_engine_closed_store_fails_like_an_unreachable_server(store_path):
    client = EmbeddedClient(store_path)
    client.close()
    with pytest.raises(AutoReconnect):
        client["db"].desks.find_one({})


def test_engine_in_memory_stream_wakes_as_soon_as_a_thread_commits():
    client = EmbeddedClient()
    desks = client["db"].desks
    with desks.watch(max_await_time_ms=30_000) as stream:
        threading.Timer(0.05, lambda: desks.insert_one({"n": 1})).start()
        change = wait_until(stream.try_next, timeout=30)
    assert change["fullDocument"]["n"] == 1


def test_engine_write_lock_goes_to_the_longest_waiter_not_back_to_a_busy_writer():
    lock = FairLock()
    turns: list[str] = []
    waiting = threading.Event()

    def busy() -> None:
        for n in range(20):
            with lock:
                turns.append("busy")
                if n == 2:
                    other.start()
                    waiting.wait(10)
                    time.sleep(0.05)  # the other thread is now blocked on the lock

    def other_writer() -> None:
        waiting.set()
        with lock:
            turns.append("other")

    other = threading.Thread(target=other_writer)
    writer = threading.Thread(target=busy)
    writer.start()
    writer.join(30)
    other.join(30)
    assert turns.index("other") == 3  # right after the turn it queued behind


def test_engine_clean_close_folds_the_write_ahead_log_into_the_file(store_path):
    client = EmbeddedClient(store_path)
    with client["db"].desks.watch(max_await_time_ms=20) as stream:
        client["db"].desks.insert_one({"n": 1})
        stream.try_next()
        stream.try_next()  # an empty poll: the cross-process poller is running now
    assert Path(store_path + "-wal").exists()
    client.close()
    assert not Path(store_path + "-wal").exists()
    with EmbeddedClient(store_path) as reopened:
        assert reopened["db"].desks.count_documents({}) == 1


def _blocked_on(lock_file: str) -> bool:
    """Tell whether some process waits in flock(2) for `lock_file` (a `->` line of /proc/locks)."""
    if not Path(lock_file).exists():
        return False
    inode = Path(lock_file).stat().st_ino
    lines = Path("/proc/locks").read_text().splitlines()
    return any("->" in line and f":{inode} " in line for line in lines)


def test_engine_a_writer_of_another_process_queues_for_the_lock_instead_of_meeting_busy(
    store_path,
):
    # With no busy timeout, a writer that found SQLite's write lock held would fail at once
    # ("database is locked"): it must wait in the writers' queue and go on when it is free.
    holder = Engine(store_path, busy_timeout=0, queue_timeout=60)
    with holder.write() as connection:
        connection.execute("INSERT INTO meta (key, value) VALUES ('holder', 1)")
        other = python(
            """
            import sys
            from embedded.engine import Engine
            engine = Engine(sys.argv[1], busy_timeout=0, queue_timeout=60)
            with engine.write() as connection:
                connection.execute("INSERT INTO meta (key, value) VALUES ('other', 2)")
            engine.close()
            """,
            store_path,
        )
        wait_until(
            lambda: other.poll() is not None or _blocked_on(store_path + "-writers.lock"),
            timeout=30,
        )
        assert other.poll() is None, other.communicate()
    _, stderr = other.communicate(timeout=60)
    assert other.returncode == 0, stderr
    with holder.read() as connection:
        rows = connection.execute("SELECT key FROM meta WHERE key IN ('holder', 'other')")
        assert sorted(key for (key,) in rows) == ["holder", "other"]
    holder.close()


def test_engine_writers_of_several_processes_never_wait_in_sqlites_busy_handler(store_path):
    # Four processes writing as fast as they can, none allowed to wait on SQLite's lock.
    Engine(store_path).close()
    code = """
        import sys
        from embedded.engine import Engine
        engine = Engine(sys.argv[1], busy_timeout=0, queue_timeout=60)
        for n in range(300):
            with engine.write() as connection:
                connection.execute(
                    "INSERT INTO meta (key, value) VALUES (?, 1)", (f"{sys.argv[2]}:{n}",)
                )
        engine.close()
    """
    writers = [python(code, store_path, str(k)) for k in range(4)]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    engine = Engine(store_path)
    with engine.read() as connection:
        (count,) = connection.execute("SELECT count(*) FROM meta WHERE key LIKE '%:%'").fetchone()
    engine.close()
    assert count == 1200


HOLD_A_WRITE = """
    import sys
    from embedded.engine import Engine
    engine = Engine(sys.argv[1])
    with engine.write() as connection:
        connection.execute("INSERT INTO meta (key, value) VALUES ('held', 1)")
        print("holding", flush=True)
        sys.stdin.readline()  # until told to commit
"""


def test_engine_a_writer_behind_a_stalled_one_gives_up_at_its_timeout_and_close_ends_a_wait(
    store_path,
):
    waiting = Engine(store_path, queue_timeout=0.2)  # opened (a write) before the holder
    patient = Engine(store_path, queue_timeout=600)
    holder = python(HOLD_A_WRITE, store_path, stdin=subprocess.PIPE)
    assert holder.stdout.readline() == "holding\n"
    with pytest.raises(AutoReconnect, match="held"):
        with waiting.write() as connection:
            connection.execute("INSERT INTO meta (key, value) VALUES ('late', 1)")
    # A writer waiting as long as it likes still stops waiting when its store is closed.
    failures: list[BaseException] = []

    def write() -> None:
        try:
            with patient.write() as connection:
                connection.execute("INSERT INTO meta (key, value) VALUES ('never', 1)")
        except AutoReconnect as error:
            failures.append(error)

    writer = threading.Thread(target=write)
    writer.start()
    wait_until(lambda: _blocked_on(store_path + "-writers.lock"))
    patient.close()
    writer.join(10)
    assert not writer.is_alive() and len(failures) == 1
    holder.communicate("commit\n", timeout=30)
    assert holder.returncode == 0
    with waiting.write() as connection:  # the lock is free again: it goes through at once
        connection.execute("INSERT INTO meta (key, value) VALUES ('after', 1)")
    with waiting.read() as connection:
        keys = {key for (key,) in connection.execute("SELECT key FROM meta")}
    assert {"held", "after"} <= keys and not {"late", "never"} & keys
    waiting.close()


def _write_behind(holder: Engine, contender: Engine, key: str, store_path: str) -> str:
    """Write `key` through `contender` while `holder` holds a write, so that it waits in the
    writers' queue; return "written", or why the write failed."""
    outcome: list[str] = []

    def write() -> None:
        try:
            with contender.write() as connection:
                connection.execute("INSERT INTO meta (key, value) VALUES (?, 1)", (key,))
            outcome.append("written")
        except AutoReconnect as error:
            outcome.append(str(error))

    with holder.write():
        writer = threading.Thread(target=write, name="contender")
        writer.start()
        # In the queue (or failed already, without waiting).
        wait_until(lambda: bool(outcome) or _blocked_on(store_path + "-writers.lock"))
    writer.join(10)
    assert not writer.is_alive()
    return outcome[0]


def test_engine_contended_writes_are_waited_for_by_one_thread_not_one_each(store_path, monkeypatch):
    # A thread started for every contended write cost CPU and a wait for it to be scheduled
    # on the write path of every process; one waiter thread takes the waits one after another.
    monkeypatch.setattr(writers, "WAITER_IDLE", 600.0)  # however slow the machine
    holder, contender = Engine(store_path), Engine(store_path)  # a lock file description each
    started: list[str] = []
    start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for n in range(3):
        assert _write_behind(holder, contender, f"c{n}", store_path) == "written"
    assert len(started) - started.count("contender") == 1
    with contender.read() as connection:
        keys = {key for (key,) in connection.execute("SELECT key FROM meta")}
    assert {"c0", "c1", "c2"} <= keys
    holder.close()
    contender.close()


def test_engine_an_idle_waiter_thread_ends_and_the_next_contended_write_starts_another(
    store_path, monkeypatch
):
    monkeypatch.setattr(writers, "WAITER_IDLE", 0.05)
    holder, contender = Engine(store_path), Engine(store_path)
    for n in range(2):
        assert _write_behind(holder, contender, f"c{n}", store_path) == "written"
        wait_until(lambda: "writers-queue" not in {t.name for t in threading.enumerate()})
    with contender.read() as connection:
        assert {"c0", "c1"} <= {key for (key,) in connection.execute("SELECT key FROM meta")}
    holder.close()
    contender.close()


def test_engine_a_waiter_thread_that_fails_fails_its_wait_and_the_next_write_goes_through(
    store_path, monkeypatch, caplog
):
    holder, contender = Engine(store_path), Engine(store_path, queue_timeout=30)
    wait = writers.WriterQueue._wait
    failures = iter([True])

    def failing_once(queue: writers.WriterQueue, fd: int) -> None:
        if next(failures, False):
            raise RuntimeError("injected")
        wait(queue, fd)

    monkeypatch.setattr(writers.WriterQueue, "_wait", failing_once)
    outcomes = [_write_behind(holder, contender, f"c{n}", store_path) for n in range(2)]
    # The first wait fails at once, saying why (not after its 30 s); the second is served.
    assert "waiter thread failed" in outcomes[0] and outcomes[1] == "written"
    assert "the writers' queue waiter failed" in caplog.text
    holder.close()
    contender.close()


def test_engine_a_forked_child_does_not_keep_a_killed_parents_write_lock(store_path):
    # The parent forks (no exec) while holding a write, then dies by SIGKILL: its lock must
    # die with it, not live on in the child's copy of the descriptor.
    Engine(store_path).close()
    parent = python(
        """
        import os, sys, time
        from embedded.engine import Engine
        engine = Engine(sys.argv[1])
        with engine.write() as connection:
            connection.execute("INSERT INTO meta (key, value) VALUES ('parent', 1)")
            if os.fork() == 0:
                time.sleep(600)  # a child that never touches the store
                os._exit(0)
            print("forked", flush=True)
            time.sleep(600)
        """,
        store_path,
        start_new_session=True,
    )
    try:
        assert parent.stdout.readline() == "forked\n"
        parent.kill()
        parent.wait(10)
        engine = Engine(store_path, queue_timeout=30)
        with engine.write() as connection:  # before the child's 600 s are up
            connection.execute("INSERT INTO meta (key, value) VALUES ('next', 1)")
        engine.close()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(parent.pid, signal.SIGKILL)  # the child too
        parent.communicate(timeout=10)


def test_engine_the_writers_lock_file_has_the_mode_of_the_store(store_path):
    engine = Engine(store_path)
    os.chmod(store_path, 0o660)
    Path(store_path + "-writers.lock").unlink()
    second = Engine(store_path)  # creates the lock file again on its first write
    with second.write() as connection:
        connection.execute("INSERT INTO meta (key, value) VALUES ('x', 1)")
    assert Path(store_path + "-writers.lock").stat().st_mode & 0o777 == 0o660
    second.close()
    engine.close()
