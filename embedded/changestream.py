"""pymongo's ChangeStream API over the oplog, with MongoDB's event shapes and errors."""

from __future__ import annotations

import copy
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from bson import Timestamp
from mongomock.aggregate import process_pipeline
from pymongo.errors import (
    ConnectionFailure,
    CursorNotFound,
    InvalidOperation,
    OperationFailure,
    PyMongoError,
)

from embedded.oplog import (
    CHANGE_STREAM_FATAL_ERROR,
    INVALID_RESUME_TOKEN,
    INVALIDATE_TOKEN,
    Document,
    Entry,
    Oplog,
    failure,
)
from embedded.pipelines import UNSURE, compile_pipeline

_FULL_DOCUMENT = {None, "default", "updateLookup", "whenAvailable", "required"}
_BEFORE_CHANGE = {None, "off", "whenAvailable", "required"}
_CRUD = {"insert", "update", "replace", "delete"}
_BATCH = 256


@dataclass(frozen=True)
class Scope:
    """What a stream watches: one collection, one database (coll None) or all (db None)."""

    db: str | None = None
    coll: str | None = None

    def invalidated_by(self, entry: Entry) -> bool:
        """Tell whether `entry` ends a stream of this scope, as MongoDB's invalidate does."""
        if self.db is None:
            return False
        if self.coll is None:
            return entry.operation == "dropDatabase"
        return entry.operation in {"drop", "rename", "dropDatabase"}


def resumable(error: PyMongoError) -> bool:
    """Tell whether pymongo would resume a change stream after `error`."""
    if isinstance(error, ConnectionFailure | CursorNotFound):
        return True
    return isinstance(error, OperationFailure) and error.has_error_label(
        "ResumableChangeStreamError"
    )


class EmbeddedChangeStream:
    """A change stream on the embedded store: same methods and semantics as pymongo's."""

    def __init__(
        self,
        oplog: Oplog,
        scope: Scope,
        lookup: Callable[[str, str, Any], Document | None],
        pipeline: Sequence[Mapping[str, Any]] | None = None,
        full_document: str | None = None,
        resume_after: Mapping[str, Any] | None = None,
        max_await_time_ms: int | None = None,
        start_at_operation_time: Timestamp | None = None,
        start_after: Mapping[str, Any] | None = None,
        full_document_before_change: str | None = None,
    ) -> None:
        if full_document not in _FULL_DOCUMENT:
            raise failure(f"unknown fullDocument mode {full_document!r}", 9, "FailedToParse")
        if full_document_before_change not in _BEFORE_CHANGE:
            raise failure(
                f"unknown fullDocumentBeforeChange mode {full_document_before_change!r}",
                9,
                "FailedToParse",
            )
        # As pymongo sends them: one token (startAfter wins over resumeAfter), and
        # startAtOperationTime only without a token. The server never sees two.
        if start_after is not None:
            resume_after = None
        if resume_after is not None or start_after is not None:
            start_at_operation_time = None
        self._oplog = oplog
        self._engine = oplog.engine
        self._scope = scope
        self._lookup = lookup
        self._pipeline = [dict(stage) for stage in pipeline or []]
        self._fast = compile_pipeline(self._pipeline) if self._pipeline else None
        self._full_document = full_document
        self._before_change = full_document_before_change
        self._max_await = (1000 if max_await_time_ms is None else max_await_time_ms) / 1000
        self._closed = False
        self._min_time: Timestamp | None = None
        self._invalidated_at: int | None = None  # position of the drop/rename that ends us
        self._batch: deque[Entry] = deque()
        self._looked_up: dict[int, Document | None] = {}  # updateLookup's, at batch time
        with self._engine.read() as connection:
            self._position = self._start_position(
                connection, resume_after, start_after, start_at_operation_time
            )
            self._oplog.check_retained(connection, self._position)  # 286 now if already gone
            if resume_after is not None or start_after is not None:
                resumed_at = self._oplog.entry(connection, self._position)
                if resumed_at is not None and self._scope.invalidated_by(resumed_at):
                    if start_after is None or self._oplog.parse_token(start_after)[1] == 0:
                        # Resuming after a drop's own event: the invalidate comes next.
                        self._invalidated_at = self._position
        self._scanned_to = self._position
        self._resume_token = self._oplog.token(self._position)
        self._oplog.noops.watched(self)

    def _start_position(
        self,
        connection: Any,
        resume_after: Mapping[str, Any] | None,
        start_after: Mapping[str, Any] | None,
        start_at_operation_time: Timestamp | None,
    ) -> int:
        if resume_after is not None:
            position, kind = self._oplog.parse_token(resume_after)
            if kind == INVALIDATE_TOKEN:
                raise failure(
                    "Attempted to resume a stream on a collection which has been dropped. "
                    "The change stream's pipeline may need to make comparisons which should "
                    "not be done after the collection was dropped; use startAfter instead.",
                    INVALID_RESUME_TOKEN,
                    "InvalidResumeToken",
                )
            return position
        if start_after is not None:
            return self._oplog.parse_token(start_after)[0]
        if start_at_operation_time is not None:
            if not isinstance(start_at_operation_time, Timestamp):
                raise TypeError("start_at_operation_time must be an instance of bson.Timestamp")
            self._min_time = start_at_operation_time
            return self._oplog.position_at(connection, start_at_operation_time)
        return self._oplog.head(connection)

    @property
    def alive(self) -> bool:
        """Tell whether the stream can return more changes."""
        return not self._closed

    @property
    def resume_token(self) -> Mapping[str, Any] | None:
        """Return the token to resume after the last change returned (or position reached)."""
        return copy.deepcopy(self._resume_token)

    def close(self) -> None:
        """Close the stream, waking a reader blocked in another thread."""
        self._closed = True
        self._oplog.noops.unwatched(self)
        self._engine.wake_all()

    def __iter__(self) -> EmbeddedChangeStream:
        return self

    def __next__(self) -> Document:
        return self.next()

    def next(self) -> Document:
        """Block until the next change arrives; StopIteration once the stream is closed."""
        while self.alive:
            change = self.try_next()
            if change is not None:
                return change
        raise StopIteration

    def __enter__(self) -> EmbeddedChangeStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def try_next(self) -> Document | None:
        """Return the next change, or None after waiting up to max_await_time_ms."""
        if self._closed:
            return None
        try:
            self._poll_faults()
            return self._next_change()
        except PyMongoError as error:
            if not resumable(error):
                self.close()
            raise
        except BaseException:
            self.close()
            raise

    def _poll_faults(self) -> None:
        fault = self._oplog.take_fault()
        if fault is None:
            return
        if not resumable(fault):
            raise fault
        # pymongo resumes once, transparently; a second failure in a row reaches the caller.
        second = self._oplog.take_fault()
        if second is not None:
            raise second

    def _next_change(self) -> Document | None:
        deadline = time.monotonic() + self._max_await
        while not self._closed:
            if self._invalidated_at is not None:
                return self._invalidate()
            while self._batch:
                entry = self._batch.popleft()
                self._position = self._scanned_to = entry.position
                change = self._change_for(entry)
                if change is not None:
                    return change
                if self._invalidated_at is not None:
                    return self._invalidate()
            seen = self._engine.commits
            if self._fetch():
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._engine.wait_for_commit(seen, remaining)
        if not self._closed:
            # Like postBatchResumeToken: an empty poll moves the token to where its last read
            # proved there is nothing in scope, and not one position further.
            self._position = self._scanned_to
            self._resume_token = self._oplog.token(self._position)
        return None

    def _fetch(self) -> bool:
        with self._engine.read() as connection:
            head = self._oplog.head(connection)
            if self._position > head:
                raise failure(
                    "cannot resume stream; the resume token was not found",
                    CHANGE_STREAM_FATAL_ERROR,
                    "ChangeStreamFatalError",
                )
            entries = self._oplog.entries_after(
                connection, self._scanned_to, _BATCH, self._scope.db, self._scope.coll
            )
            if not entries:
                self._scanned_to = head  # nothing in scope up to the head
        if self._full_document == "updateLookup":
            # Looked up as the batch is built, like MongoDB's getMore: a later version of the
            # document, or None if it is gone by then; reading the event later changes nothing.
            for entry in entries:
                if entry.operation == "update":
                    assert entry.coll is not None and entry.document_key is not None
                    key = entry.document_key["_id"]
                    self._looked_up[entry.position] = self._lookup(entry.db, entry.coll, key)
        self._batch.extend(entries)
        return bool(entries)

    def _change_for(self, entry: Entry) -> Document | None:
        if self._min_time is not None and entry.cluster_time < self._min_time:
            return None
        if self._scope.invalidated_by(entry):
            self._invalidated_at = entry.position
        return self._through_pipeline(self._event(entry))

    def _through_pipeline(self, change: Document) -> Document | None:
        fast = self._fast(change) if self._fast is not None else UNSURE
        if fast is None:
            return None
        if fast is not UNSURE:
            change = fast
        elif self._pipeline:
            try:
                matched = list(process_pipeline([change], None, self._pipeline, None))
            except NotImplementedError as error:
                raise failure(str(error), 40324, "Location40324") from None
            if not matched:
                return None
            change = matched[0]
        if "_id" not in change:
            self.close()
            raise InvalidOperation(
                "Cannot provide resume functionality when the resume token is missing."
            )
        self._resume_token = copy.deepcopy(change["_id"])
        return change

    def _invalidate(self) -> Document | None:
        # MongoDB sends the invalidate through the user's pipeline; filtered out or not, the
        # stream ends there and its token is the invalidate's (resumable only by startAfter).
        assert self._invalidated_at is not None
        with self._engine.read() as connection:
            entry = self._oplog.entry(connection, self._invalidated_at)
        self._batch.clear()
        self._looked_up.clear()
        token = self._oplog.token(self._invalidated_at, INVALIDATE_TOKEN)
        change: Document = {"_id": token, "operationType": "invalidate"}
        if entry is not None:
            change.update(clusterTime=entry.cluster_time, wallTime=entry.wall_time)
        self._closed = True
        self._oplog.noops.unwatched(self)
        self._resume_token = token
        return self._through_pipeline(change)

    def _event(self, entry: Entry) -> Document:
        change: Document = {
            "_id": self._oplog.token(entry.position),
            "operationType": entry.operation,
            "clusterTime": entry.cluster_time,
            "wallTime": entry.wall_time,
        }
        if entry.operation in {"insert", "replace"}:
            change["fullDocument"] = entry.after
        elif entry.operation == "update" and self._full_document not in {None, "default"}:
            change["fullDocument"] = self._post_image(entry)
        if entry.operation == "dropDatabase":
            change["ns"] = {"db": entry.db}
        else:
            change["ns"] = {"db": entry.db, "coll": entry.coll}
        if entry.operation == "rename" and entry.to is not None:
            change["to"] = {"db": entry.to[0], "coll": entry.to[1]}
        if entry.operation in _CRUD:
            change["documentKey"] = entry.document_key
        if entry.operation == "update":
            change["updateDescription"] = entry.description
        if entry.operation in {"update", "replace", "delete"} and self._before_change not in {
            None,
            "off",
        }:
            change["fullDocumentBeforeChange"] = self._image(
                entry, entry.before, self._before_change, "pre"
            )
        return change

    def _post_image(self, entry: Entry) -> Document | None:
        if self._full_document == "updateLookup":
            return self._looked_up.pop(entry.position, None)
        return self._image(entry, entry.after, self._full_document, "post")

    @staticmethod
    def _image(
        entry: Entry, image: Document | None, mode: str | None, kind: str
    ) -> Document | None:
        if entry.images:
            return image
        if mode == "required":
            raise failure(
                f"Change stream was configured to require a {kind}-image for all update, "
                f"delete and replace events, but the {kind}-image was not found for the event "
                f"at position {entry.position}",
                47,
                "NoMatchingDocument",
            )
        return None
