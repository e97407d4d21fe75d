"""Sessions with multi-document transactions, as pymongo's ClientSession runs them.

A transaction is one SQLite write transaction: every operation given the session, in the
thread that started it, joins it; it commits all at once (its oplog entries with it) or not at
all. Writers of other threads and processes queue behind it, so it is serializable. As on
MongoDB, an operation that fails inside a transaction aborts the whole transaction: later
operations and the commit raise NoSuchTransaction (251).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from pymongo.errors import InvalidOperation

from embedded.engine import Engine

T = TypeVar("T")


class EmbeddedSession:
    """A session of the embedded store: `with_transaction` and `start_transaction`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._thread: int | None = None  # the thread whose transaction is open
        self._ended = False

    @property
    def in_transaction(self) -> bool:
        """Tell whether a transaction is open."""
        return self._thread is not None

    def check_usable(self) -> None:
        """Refuse an operation this session cannot carry (ended, or another thread's)."""
        if self._ended:
            raise InvalidOperation("Cannot use ended session")
        if self._thread is not None and self._thread != threading.get_ident():
            raise InvalidOperation(
                "the embedded store runs a session's transaction in the thread that started it"
            )

    @contextmanager
    def start_transaction(self, **_options: Any) -> Iterator[None]:
        """Run the block as one transaction: committed at its end, aborted if it raises."""
        self.check_usable()
        if self._thread is not None:
            raise InvalidOperation("Transaction already in progress")
        with self._engine.write(transaction=True):
            self._thread = threading.get_ident()
            try:
                yield
            finally:
                self._thread = None

    def with_transaction(self, callback: Callable[[EmbeddedSession], T], **_options: Any) -> T:
        """Run `callback(session)` in a transaction and commit it; abort if it raises."""
        with self.start_transaction():
            return callback(self)

    def commit_transaction(self) -> None:
        """Refuse: the transaction commits at the end of start_transaction()'s block."""
        raise NotImplementedError(
            "the embedded store commits at the end of `with session.start_transaction():` or "
            "with_transaction(); commit_transaction() is not supported"
        )

    abort_transaction = commit_transaction

    def end_session(self) -> None:
        """End the session."""
        self._ended = True

    def __enter__(self) -> EmbeddedSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.end_session()
