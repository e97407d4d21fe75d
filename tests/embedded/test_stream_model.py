"""A model of the change stream: it yields exactly the committed writes after its token, in commit
order, once, whatever two writing processes, rollbacks, no-ops, polls, resumes and restarts do.

Writers are separate clients on one file (separate SQLite connections, as separate processes
are). Writes can also be scheduled to commit in the middle of a poll, after any of the read
transactions it makes: the interleaving that once made the stream jump over a commit.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)
from pymongo.errors import DuplicateKeyError

from embedded import EmbeddedClient

WRITERS = ("A", "B")
OPERATIONS = ("insert", "update", "delete", "other", "noop", "rollback", "duplicate")


class Rollback(Exception):
    """Raised inside a write transaction to roll it back."""


class StreamModel(RuleBasedStateMachine):
    """The stream against a list of what committed, in the order it committed."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="stream-model-"))
        self.path = str(self.directory / "store.sqlite3")
        self.writers = {name: self._client() for name in WRITERS}
        self.reader = self._client()
        self.committed: list[tuple[str, int]] = []  # (operation, n) of each desks write
        self.live: list[int] = []  # desks that exist, by n
        self.next_n = 0
        self.tokens: list[tuple[dict[str, Any], int]] = []  # every token seen, and its index
        self.during_poll: list[tuple[int, str, str, int]] = []  # (after read k, writer, op, pick)
        self.stream = self.reader["db"].desks.watch(max_await_time_ms=0)
        self.start = 0  # the stream yields committed[start:], then stays caught up
        self.delivered: list[tuple[str, int]] = []
        self._hook_reads()

    def _client(self) -> EmbeddedClient:
        return EmbeddedClient(self.path, noop_interval=3600, synchronous="NORMAL")

    def _hook_reads(self) -> None:
        engine = self.reader.engine
        original = type(engine).read.__get__(engine)
        polling = threading.current_thread()
        model = self

        @contextlib.contextmanager
        def read() -> Iterator[sqlite3.Connection]:
            with original() as connection:
                yield connection
            if threading.current_thread() is polling and model.during_poll:
                model.reads += 1
                due = [w for w in model.during_poll if w[0] <= model.reads]
                model.during_poll = [w for w in model.during_poll if w[0] > model.reads]
                for _, writer, operation, pick in due:
                    model._write(writer, operation, pick)

        engine.read = read  # type: ignore[method-assign]
        self.reads = 0

    # -- writing ---------------------------------------------------------------------

    def _write(self, writer: str, operation: str, pick: int) -> None:
        client = self.writers[writer]
        desks = client["db"].desks
        if operation in {"update", "delete"} and not self.live:
            operation = "insert"
        if operation == "insert":
            n = self.next_n
            self.next_n += 1
            desks.insert_one({"_id": n, "v": 0})
            self.live.append(n)
            self.committed.append(("insert", n))
        elif operation == "update":
            n = self.live[pick % len(self.live)]
            desks.update_one({"_id": n}, {"$inc": {"v": 1}})
            self.committed.append(("update", n))
        elif operation == "delete":
            n = self.live.pop(pick % len(self.live))
            desks.delete_one({"_id": n})
            self.committed.append(("delete", n))
        elif operation == "other":  # another collection: out of the stream's scope
            client["db"].other.insert_one({"n": pick})
        elif operation == "noop":
            with client.engine.write() as connection:
                client.oplog.append(connection, "noop", "admin", None)
        elif operation == "rollback":  # a write that never commits
            with contextlib.suppress(Rollback), client.engine.write():
                desks.insert_one({"_id": f"rolled back {pick}"})
                raise Rollback
        elif operation == "duplicate" and self.live:  # refused: nothing commits
            with contextlib.suppress(DuplicateKeyError):
                desks.insert_one({"_id": self.live[pick % len(self.live)]})

    @rule(
        writer=st.sampled_from(WRITERS),
        operation=st.sampled_from(OPERATIONS),
        pick=st.integers(0, 50),
    )
    def write(self, writer: str, operation: str, pick: int) -> None:
        self._write(writer, operation, pick)

    @rule(
        after_read=st.integers(1, 4),
        writer=st.sampled_from(WRITERS),
        operation=st.sampled_from(OPERATIONS),
        pick=st.integers(0, 50),
    )
    def write_during_next_poll(
        self, after_read: int, writer: str, operation: str, pick: int
    ) -> None:
        self.during_poll.append((after_read, writer, operation, pick))

    @rule(writer=st.sampled_from(WRITERS))
    def restart_writer(self, writer: str) -> None:
        self.writers[writer].close()
        self.writers[writer] = self._client()

    # -- reading ---------------------------------------------------------------------

    def _poll(self) -> dict[str, Any] | None:
        self.reads = 0
        change = self.stream.try_next()
        for _, writer, operation, pick in self.during_poll:  # writes the poll did not reach
            self._write(writer, operation, pick)
        self.during_poll = []
        if change is not None:
            self.delivered.append((change["operationType"], change["documentKey"]["_id"]))
        self.tokens.append((self.stream.resume_token, self.start + len(self.delivered)))
        return change

    @rule()
    def poll(self) -> None:
        self._poll()

    @rule()
    def drain(self) -> None:
        """Poll until an empty poll: the stream has then yielded everything committed."""
        for _ in range(len(self.committed) + 10):
            committed = len(self.committed)
            if self._poll() is None and len(self.committed) == committed:
                break
        assert self.delivered == self.committed[self.start :]

    @precondition(lambda self: self.tokens)
    @rule(pick=st.integers(0, 1000))
    def resume(self, pick: int) -> None:
        token, index = self.tokens[pick % len(self.tokens)]
        self.stream.close()
        self.stream = self.reader["db"].desks.watch(max_await_time_ms=0, resume_after=token)
        self.start, self.delivered = index, []

    @rule()
    def restart_reader(self) -> None:
        token = self.stream.resume_token
        self.stream.close()
        self.reader.close()
        self.reader = self._client()
        self._hook_reads()
        self.stream = self.reader["db"].desks.watch(max_await_time_ms=0, resume_after=token)
        self.start, self.delivered = self.start + len(self.delivered), []

    @invariant()
    def yields_what_committed_in_order_once(self) -> None:
        assert self.delivered == self.committed[self.start : self.start + len(self.delivered)]

    def teardown(self) -> None:
        self.stream.close()
        for client in [self.reader, *self.writers.values()]:
            client.close()
        shutil.rmtree(self.directory, ignore_errors=True)


StreamModel.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_stream_yields_every_commit_after_its_token_in_order_once = StreamModel.TestCase
