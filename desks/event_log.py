"""The event log (`desk_events`): every desk event once, by seq, with the change that caused it.

The watcher appends; the API, the broadcasters and `desks replay` read. It lives in the shared
package because the API reads it too, and the API may not import the watcher.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from desks.bson_json import to_json
from desks.events import (
    CREATED,
    DELETED,
    DESK_SNAPSHOT,
    RESYNC,
    SNAPSHOT,
    Event,
    EventFormatError,
    decode,
)
from desks.store import rollback_safe

Document = dict[str, Any]

log = logging.getLogger("desks.event_log")

EVENTS = "desk_events"
META = "desk_events_meta"
# Desks whose states one query reads: an $in list the (desk_id, seq) index serves.
AS_OF_BATCH = 500
# Registry totals kept per (log, seq): a reader of every page asks for the same one each time.
TOTALS_KEPT = 64


class AsOfPage(NamedTuple):
    """A page of the registry as of a seq: its desks, how many in all, the next cursor."""

    desks: list[Document]
    total: int
    next: int | None  # pass as `after` for the next page; None on the last page


class EventLog:
    """Append-only, gap-free log of desk events, unique on seq and on the change's resume token."""

    def __init__(self, database: Database[Document]) -> None:
        # Appended with w:majority, read with read concern majority (see store.rollback_safe).
        self._events = rollback_safe(database[EVENTS])
        self._meta = rollback_safe(database[META])
        # The log is append-only, so the registry as of a logged seq never changes: its total,
        # counted over the whole span (O(N)), is counted once, not once a page.
        self._totals: dict[tuple[str | None, int], int] = {}
        self._totals_lock = threading.Lock()

    def ensure_indexes(self) -> None:
        """Create the indexes: unique tokens (a re-delivered change cannot be logged twice),
        one desk's events and one type's events by seq (history queries)."""
        self._events.create_index([("token", ASCENDING)], unique=True, name="token_unique")
        self._events.create_index([("desk_id", ASCENDING), ("_id", DESCENDING)], name="desk_seq")
        self._events.create_index([("type", ASCENDING), ("_id", ASCENDING)], name="type_seq")

    def epoch(self) -> str:
        """Return this log's identity, creating it once; a seq means nothing in another log."""
        self._meta.update_one(
            {"_id": "log"}, {"$setOnInsert": {"epoch": secrets.token_hex(8)}}, upsert=True
        )
        epoch = self.existing_epoch()
        assert epoch is not None
        return epoch

    def existing_epoch(self) -> str | None:
        """Return this log's identity without creating it (readers must not write)."""
        found = self._meta.find_one({"_id": "log"})
        return str(found["epoch"]) if found else None

    def head(self) -> int:
        """Return the highest seq logged (0 for an empty log)."""
        last = self._events.find_one({}, sort=[("_id", DESCENDING)], projection={"_id": 1})
        return int(last["_id"]) if last else 0

    def logged_at(self, tokens: Sequence[str]) -> dict[str, int]:
        """Return the seq each of the changes with these resume tokens was logged at, for
        those already in the log."""
        found = self._events.find({"token": {"$in": list(tokens)}}, {"token": 1})
        return {str(document["token"]): int(document["_id"]) for document in found}

    def append(self, event: Event, token: str) -> bool:
        """Log `event` (its seq must be head + 1); return False if the change was logged before."""
        try:
            self._events.insert_one(_document(event, token))
        except DuplicateKeyError:
            if self.logged_at([token]):
                return False
            raise  # the seq is taken by another change: two writers, which must not happen
        return True

    def append_many(self, entries: Sequence[tuple[Event, str]]) -> None:
        """Log events with consecutive seqs from head + 1, in one write, in order.

        The caller leaves out changes already logged (see `logged_at`); a duplicate here means
        another writer, and the write fails.
        """
        self._events.insert_many([_document(event, token) for event, token in entries])

    def after(self, seq: int, limit: int) -> list[Event]:
        """Return up to `limit` events with a seq greater than `seq`, in order."""
        return [_event(document) for document in self._after(seq, limit)]

    def after_encoded(self, seq: int, limit: int) -> list[tuple[int, str]]:
        """Return up to `limit` events with a seq greater than `seq`, in order, each with its
        JSON as clients get it. One this version cannot read (a newer watcher's type) is
        passed on as logged, not held up: a reader of the log must never stall on it."""
        return [_encoded(document) for document in self._after(seq, limit)]

    def _after(self, seq: int, limit: int) -> Iterator[Document]:
        cursor = self._events.find({"_id": {"$gt": seq}}, projection={"token": 0})
        return iter(cursor.sort("_id", ASCENDING).limit(limit))

    def of_desk(self, desk_id: str, after: int, limit: int) -> list[Event]:
        """Return up to `limit` events of one desk with a seq greater than `after`, in order.

        Served by the (desk_id, seq) index: the cost does not grow with the log.
        """
        cursor = self._events.find(
            {"desk_id": desk_id, "_id": {"$gt": after}}, projection={"token": 0}
        )
        return [_event(document) for document in cursor.sort("_id", ASCENDING).limit(limit)]

    def knows(self, desk_id: str) -> bool:
        """Tell whether the log holds any event of this desk."""
        return self._events.find_one({"desk_id": desk_id}, projection={"_id": 1}) is not None

    def as_of(
        self, seq: int, name: str | None, skip: int, limit: int, after: int | None = None
    ) -> AsOfPage:
        """Return one page of the desks as they stood right after event `seq`, in the order
        they entered the log (optionally those whose name holds `name`), and how many in all.

        From the latest snapshot up to `seq` (it holds every desk then), each desk enters
        with its `desk_created` or `desk_snapshot` event; its state is its newest event up to
        `seq`. The walk reads a page's worth of desks through the (type, seq) and
        (desk_id, seq) indexes; without a name filter the total is counted on the index
        (entered minus deleted), so a page costs the same at any log length. A name filter
        walks every desk of the span.

        `after` is a cursor (`AsOfPage.next`: where the last page ended) and makes `skip`
        count from there: reading every page then costs O(N) in all, not O(N^2).
        """
        marker = self._events.find_one(
            {"type": SNAPSHOT, "_id": {"$lte": seq}}, sort=[("_id", DESCENDING)]
        )
        span = {"$gt": int(marker["_id"]) if marker else 0, "$lte": seq}
        pattern = re.compile(re.escape(name), re.IGNORECASE) if name is not None else None
        page: list[Document] = []
        found = 0
        last: int | None = None  # where the page's last desk entered the log
        more = False
        earlier = 0  # desks the name matches that pages before the cursor listed
        # Without a filter the walk starts at the cursor; with one it walks the whole span
        # anyway (for the total), counting the desks before the cursor apart.
        wanted = skip + limit + 1 if pattern is None else 0
        for batch in self._entered(span, wanted, after if pattern is None else None):
            states, first = self._states([desk_id for _, desk_id in batch], span)
            for entered, desk_id in batch:
                desk = states.get(desk_id)
                if desk is None or (pattern is not None and not _holds(desk.get("name"), pattern)):
                    continue
                if after is not None and first[desk_id] <= after:
                    earlier += 1  # on a page before the cursor, where it first entered
                    continue
                if skip <= found < skip + limit:
                    page.append(to_json(desk))
                    last = entered
                elif found == skip + limit:
                    more = True
                found += 1
            if pattern is None and more:
                break
        cursor = last if more else None
        if pattern is not None:
            return AsOfPage(page, earlier + found, cursor)
        return AsOfPage(page, self._total(seq, span), cursor)

    def _total(self, seq: int, span: Document) -> int:
        """Count the desks as of `seq` (a logged seq): entered minus deleted in its span."""
        key = (self.existing_epoch(), seq)
        with self._totals_lock:
            total = self._totals.get(key)
        if total is not None:
            return total
        entered = self._count(DESK_SNAPSHOT, span) + self._count(CREATED, span)
        total = entered - self._count(DELETED, span)
        if seq <= self.head():  # beyond it, events still to come would change the total
            with self._totals_lock:
                self._totals[key] = total
                while len(self._totals) > TOTALS_KEPT:
                    del self._totals[next(iter(self._totals))]  # the oldest counted
        return total

    def registry(self, seq: int, serialize: Callable[[Document], str]) -> list[str]:
        """Return every desk as it stood right after event `seq`, serialized, in the order
        they entered the log: what reading every `as_of` page gives, in one read of the log.

        The span from the latest snapshot up to `seq` is read once, newest event first (no
        per-desk lookups): a desk's first event met is its state, serialized then and only
        then (a deletion leaves it out); its oldest `desk_created` or `desk_snapshot` in the
        span is where it entered (a desk made again with its old id keeps that place), and a
        desk with none there is not in the registry.
        """
        marker = self._events.find_one(
            {"type": SNAPSHOT, "_id": {"$lte": seq}}, sort=[("_id", DESCENDING)]
        )
        span = {"$gt": int(marker["_id"]) if marker else 0, "$lte": seq}
        states: dict[str, str | None] = {}  # by desk id: serialized, None once deleted
        entered: dict[str, int] = {}  # by desk id: where it entered the span
        events = self._events.find({"_id": span}, projection={"desk_id": 1, "type": 1, "desk": 1})
        for event in events.sort("_id", DESCENDING):
            desk_id, kind = event.get("desk_id"), event.get("type")
            if desk_id is None:
                continue  # not a desk's event
            if desk_id not in states:
                desk = None if kind == DELETED else to_json(dict(event["desk"]))
                states[desk_id] = None if desk is None else serialize(desk)
            if kind in (DESK_SNAPSHOT, CREATED):
                entered[desk_id] = int(event["_id"])  # the oldest last
        order = sorted(entered, key=entered.__getitem__)
        return [state for desk_id in order if (state := states[desk_id]) is not None]

    def _entered(
        self, span: Document, wanted: int, after: int | None = None
    ) -> Iterator[list[tuple[int, str]]]:
        """Yield (seq, id) of the desks entering the log within `span` (past `after`), in log
        order, in batches (the first sized for `wanted` desks, if more than 0); each desk
        once, at its first entry in the span.

        A snapshot's desks come right after its marker, before any creation of the span, so
        snapshot entries then creations is log order.
        """
        seen: set[str] = set()
        batch: list[tuple[int, str]] = []
        size = min(wanted, AS_OF_BATCH) if wanted > 0 else AS_OF_BATCH
        start = {**span, "$gt": max(span["$gt"], after)} if after is not None else span
        for kind in (DESK_SNAPSHOT, CREATED):
            cursor = self._events.find(
                {"type": kind, "_id": start}, projection={"desk_id": 1}, batch_size=AS_OF_BATCH
            )
            for document in cursor.sort("_id", ASCENDING):
                desk_id = document.get("desk_id")
                if desk_id is None or desk_id in seen:
                    continue  # a desk re-created with its old id keeps its first place
                seen.add(desk_id)
                batch.append((int(document["_id"]), desk_id))
                if len(batch) >= size:
                    yield batch
                    batch, size = [], AS_OF_BATCH
        if batch:
            yield batch

    def _states(
        self, desk_ids: list[str], span: Document
    ) -> tuple[dict[str, Document], dict[str, int]]:
        """Return the desks of `desk_ids` that are not deleted at the end of `span`, by id,
        as their newest event in `span` shows them, and where each first entered the span."""
        newest: dict[str, Document] = {}
        first: dict[str, int] = {}
        cursor = self._events.find(
            {"desk_id": {"$in": desk_ids}, "_id": span},
            projection={"desk_id": 1, "type": 1, "desk": 1},
        )
        for document in cursor.sort([("desk_id", ASCENDING), ("_id", DESCENDING)]):
            desk_id = document["desk_id"]
            newest.setdefault(desk_id, document)
            if document["type"] in (DESK_SNAPSHOT, CREATED):
                first[desk_id] = int(document["_id"])  # oldest last
        states = {
            desk_id: dict(event["desk"])
            for desk_id, event in newest.items()
            if event["type"] != DELETED
        }
        return states, first

    def _count(self, kind: str, span: Document) -> int:
        return self._events.count_documents({"type": kind, "_id": span})

    def unknown_state(self, seq: int) -> str | None:
        """Say why the registry right after `seq` cannot be told, if it cannot: from a resync
        until its snapshot is complete, the changes in between were never logged."""
        resync = self._events.find_one(
            {"type": RESYNC, "_id": {"$lte": seq}}, sort=[("_id", DESCENDING)]
        )
        if resync is None:
            return None
        marker = self._events.find_one({"_id": resync["_id"] + 1, "type": SNAPSHOT})
        if marker is None:
            return f"history was lost at seq {resync['_id']} and no snapshot follows it"
        after = self._events.find_one(
            {"_id": {"$gt": marker["_id"]}, "type": {"$ne": DESK_SNAPSHOT}},
            sort=[("_id", ASCENDING)],
            projection={"_id": 1},
        )
        complete = int(after["_id"]) - 1 if after else self.head()
        if seq < complete:
            return (
                f"history was lost at seq {resync['_id']}; the registry is known again from "
                f"seq {complete}, once its snapshot is complete"
            )
        return None

    def state_of(self, desk_id: str, after: int, through: int) -> tuple[bool, int]:
        """Return whether the registry the log describes holds the desk, folding events with
        a seq in (after, through] (`after` a snapshot marker), and the version it shows."""
        newest = self._events.find_one(
            {"desk_id": desk_id, "_id": {"$gt": after, "$lte": through}},
            sort=[("_id", DESCENDING)],
            projection={"type": 1, "version": 1},
        )
        if newest is None:
            return False, 0
        return newest["type"] != DELETED, int(newest.get("version") or 0)

    def last_state(self, desk_id: str) -> Document | None:
        """Return the desk as its newest logged event shows it, or None if never logged."""
        document = self._events.find_one({"desk_id": desk_id}, sort=[("_id", DESCENDING)])
        return dict(document["desk"]) if document else None

    def watch(self, max_await_ms: int) -> Any:
        """Open a change stream that rings on each append, by any process, with its seq only
        (`documentKey._id`): followers read the events themselves, by seq."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"operationType": "insert"}},
            {"$project": {"documentKey": 1}},
        ]
        return self._events.watch(pipeline, max_await_time_ms=max_await_ms)

    def watch_identity(self, max_await_ms: int) -> Any:
        """Open a change stream that rings when the log's identity is written (a new log)."""
        return self._meta.watch(
            [{"$match": {"operationType": {"$in": ["insert", "update", "replace"]}}}],
            max_await_time_ms=max_await_ms,
        )


def _holds(name: Any, pattern: re.Pattern[str]) -> bool:
    # As the live list's $regex: only a string name can match.
    return isinstance(name, str) and pattern.search(name) is not None


def _document(event: Event, token: str) -> Document:
    document = {"_id": event.seq, "token": token, **event.to_json()}
    document.pop("seq")
    return document


def _encoded(document: Document) -> tuple[int, str]:
    seq = int(document["_id"])
    try:
        return seq, _event(document).encode()
    except (EventFormatError, ValueError, TypeError, KeyError) as error:
        data = to_json({"seq": seq, **{k: v for k, v in document.items() if k != "_id"}})
        log.warning("event passed on as logged", extra={"seq": seq, "error": str(error)})
        return seq, json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _event(document: Document) -> Event:
    data = dict(document)
    data["seq"] = data.pop("_id")
    # The watcher logs JSON only; a log written by an older version may hold BSON values.
    return decode(to_json(data))
