"""The watcher's loop: desks change stream -> event log, resuming from the checkpoint."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

from desks.backoff import Backoff
from desks.bson_json import key_text
from desks.desk import desk_json, iso_utc, utc_now
from desks.event_log import EventLog
from desks.events import (
    DeskEvent,
    DeskSnapshot,
    EventFormatError,
    Resync,
    Snapshot,
    fit,
    from_change,
    version_of,
)
from desks.store import DESKS, Store, rollback_safe
from watcher import metrics
from watcher.checkpoint import Checkpoint
from watcher.feed import ChangeFeed
from watcher.lease import Lease, LeaseLost
from watcher.settling import Settling

log = logging.getLogger("desks.watcher")

OPERATIONS = ["insert", "update", "replace", "delete"]
PIPELINE = [{"$match": {"operationType": {"$in": OPERATIONS}}}]
# The saved token cannot be resumed: history lost (286), not in this stream's history (280),
# an invalidate token (260), malformed (9, 40647). Retrying would loop forever.
UNRESUMABLE = {286, 280, 260, 9, 40647}
# Changes logged in one write at most: a backlog is caught up in batches this size.
BATCH = 500


class Watcher:
    """Tail the desks collection's change stream into the event log, once per change."""

    def __init__(
        self,
        store: Store,
        events: EventLog,
        checkpoint: Checkpoint,
        max_await_ms: int = 500,
        backoff: Backoff | None = None,
        lease: Lease | None = None,
        max_event_bytes: int = 64 * 1024,
    ) -> None:
        self._store = store
        self._events = events
        self._checkpoint = checkpoint
        metrics.CHECKPOINT_AGE.set_function(checkpoint.age)
        self._max_await_ms = max_await_ms
        self._backoff = backoff or Backoff()
        self._lease = lease
        self._max_event_bytes = max_event_bytes
        self._renewed = 0.0
        self.role = "starting"  # then active, standby or retrying: what health checks report
        self._prepared = False
        self._images = False
        self._seq = 0
        self._settling: Settling | None = None  # after a snapshot, until the stream catches up
        self.healthy = threading.Event()
        self._changed = threading.Condition()  # role or health changed

    def run(self, stop: threading.Event) -> None:
        """Tail until `stop` is set, retrying every failure with capped exponential backoff."""
        while not stop.is_set():
            try:
                if not self._prepared:
                    self._prepare()
                if not self._hold_lease():
                    self._set_role("standby")
                    stop.wait(self._standby_poll())
                    continue
                self._set_role("active")
                self._tail(stop)
            except LeaseLost as error:
                log.error("lease lost; standing by", extra={"error": str(error)})
                self.healthy.clear()
                self._set_role("standby")
            except Exception as error:  # one rule for long-running loops: log, back off, go on
                self.healthy.clear()
                self._set_role("retrying")
                delay = self._backoff.next()
                log.warning(
                    "change stream failed; retrying",
                    extra={
                        "error": f"{type(error).__name__}: {error}",
                        "retry_in_s": round(delay, 2),
                    },
                    exc_info=not isinstance(error, PyMongoError),  # a bug: keep the traceback
                )
                stop.wait(delay)
        self.healthy.clear()
        if self._lease is not None and self.role == "active":
            try:
                self._lease.release()  # let a standby take over now, not at expiry
            except PyMongoError:
                pass
        self._set_role("stopped")

    @property
    def ready(self) -> bool:
        """Tell whether every write from now on will be logged: tailing, or a standby."""
        return self.role == "standby" or (self.role == "active" and self.healthy.is_set())

    def wait_ready(self, timeout: float) -> bool:
        """Block until `ready` (True) or until `timeout` seconds pass (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.ready, timeout)

    def _set_role(self, role: str) -> None:
        metrics.WATCHER_ROLE.state(role)
        if role != self.role:
            log.info("role", extra={"role": role, "was": self.role})
            self.role = role
            self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _hold_lease(self) -> bool:
        if self._lease is None:
            return True
        now = time.monotonic()
        held = self._lease.acquire()
        self._renewed = now
        return held

    def _standby_poll(self) -> float:
        return 0.5 if self._lease is None else min(1.0, self._lease.ttl / 10)

    def _lease_lost(self) -> bool:
        # Renew a third of the way through the TTL; a failed renewal means someone else took over.
        if self._lease is None or time.monotonic() - self._renewed < self._lease.ttl / 3:
            return False
        if self._hold_lease():
            return False
        log.error("lease lost; standing by", extra={"owner": self._lease.owner})
        return True

    def _prepare(self) -> None:
        self._events.ensure_indexes()
        self._images = _enable_images(self._store)
        self._prepared = True

    def _watch_options(self, token: Mapping[str, Any] | None) -> dict[str, Any]:
        options: dict[str, Any] = {"max_await_time_ms": self._max_await_ms}
        if self._images:
            # Exact post- and pre-images: updateLookup could show a later version of the desk.
            options["full_document"] = "whenAvailable"
            options["full_document_before_change"] = "whenAvailable"
        else:
            options["full_document"] = "updateLookup"
        if token is not None:
            options["resume_after"] = token
        return options

    def _tail(self, stop: threading.Event) -> None:
        token = self._checkpoint.load()
        try:
            stream = self._store.desks.watch(PIPELINE, **self._watch_options(token))
        except OperationFailure as error:
            if error.code not in UNRESUMABLE:
                raise
            self._start_over("history_lost", error)
            return
        self._seq = self._events.head()
        # The log's identity, made by its writer before anything is logged: broadcasters
        # follow a log once it has one (a seq means nothing without it).
        epoch = self._events.epoch()
        log.info(
            "tailing",
            extra={"resumed": token is not None, "head_seq": self._seq, "epoch": epoch},
        )
        self.healthy.set()
        self._notify()
        self._backoff.reset()
        with stream:
            self._settling = None
            if self._checkpoint.resync_reason is not None:
                # Logged only once the new stream is open: any write after this resync is an
                # event after it, any write before it is in the snapshot that follows it. A
                # crash before the checkpoint is saved logs both again: the newer snapshot
                # supersedes a partial one.
                self._log_resync(self._checkpoint.resync_reason)
                marker = self._log_snapshot(self._checkpoint.resync_reason)
                self._checkpoint.settling_after = marker
                self._checkpoint.save(stream.resume_token, force=True, logged_through=self._seq)
                self._settling = Settling(self._events, marker, self._seq)
            elif self._checkpoint.settling_after is not None:
                # Restarted while settling: changes are read again from the checkpoint, each
                # judged against the log as it stood where that checkpoint was taken.
                frontier = self._checkpoint.logged_through or self._checkpoint.settling_after
                self._settling = Settling(self._events, self._checkpoint.settling_after, frontier)
            elif token is None:
                # Started from "now": make that position durable at once, or the writes
                # between a quick stop and the next start would be lost.
                self._checkpoint.save(stream.resume_token, force=True)
            with ChangeFeed(stream) as feed:
                self._follow(feed, stop)

    def _follow(self, feed: ChangeFeed, stop: threading.Event) -> None:
        while not stop.is_set() and not self._lease_lost():
            try:
                items = feed.take(self._max_await_ms / 1000, BATCH)
            except OperationFailure as error:
                if error.code not in UNRESUMABLE:
                    raise
                self._start_over("history_lost", error)
                return
            changes = [item.change for item in items if item.change is not None]
            invalidated = any(c["operationType"] == "invalidate" for c in changes)
            self._log_batch([c for c in changes if c["operationType"] != "invalidate"])
            if len(changes) < len(items) and self._settling is not None:
                # An empty poll, begun after the snapshot was read: every change the snapshot
                # may already show has been read by now (saved with the next checkpoint).
                self._settling = self._checkpoint.settling_after = None
            if invalidated or feed.ended:
                # A stream ends without an error only when invalidated (drop, rename), even
                # when the pipeline filtered the invalidate event out, as MongoDB does.
                self._start_over("invalidated", None)
                return
            if changes:  # after their events are logged
                self._checkpoint.save(items[-1].token, logged_through=self._seq)
            elif items:  # empty polls: saved once a minute
                self._checkpoint.idle(items[-1].token, logged_through=self._seq)
        if stop.is_set():
            self._checkpoint.flush()  # a clean stop, lease still held: re-read nothing

    def _start_over(self, reason: str, error: OperationFailure | None) -> None:
        # The checkpoint cannot be resumed (history lost, collection dropped): start from now
        # rather than crash-looping on a dead token, and tell clients to reload.
        log.error(
            "change stream cannot resume; starting from now with a resync",
            extra={"reason": reason, "error": str(error) if error else None},
        )
        self._checkpoint.start_over(reason)
        self._prepared = False  # a re-created collection needs its images switched on again

    def _log_resync(self, reason: str) -> None:
        event = Resync(self._seq + 1, iso_utc(utc_now()), reason)
        self._events.append(event, f"resync:{uuid.uuid4().hex}")
        metrics.logged([event], writes=False)
        self._seq = event.seq
        log.info("logged", extra={"seq": event.seq, "type": event.type, "reason": reason})

    def _log_snapshot(self, reason: str) -> int:
        """Log a `snapshot` marker and every desk as it stands, so the log alone rebuilds the
        store: the changes since the last logged event were lost with the history. Return the
        marker's seq.

        Desks written while it is read also come through the open stream afterwards: until
        the stream has caught up, a change the snapshot already shows is not logged again
        (`watcher.settling`).
        """
        label = uuid.uuid4().hex
        marker = Snapshot(self._seq + 1, iso_utc(utc_now()), reason)
        self._events.append(marker, f"snapshot:{label}")
        metrics.logged([marker], writes=False)
        seq = marker.seq
        batch: list[tuple[DeskEvent, str]] = []
        # Majority-committed desks only: a change stream delivers majority-committed changes,
        # so everything the snapshot shows comes through the stream before its first empty
        # poll (which ends the settling); a desk read locally first could come after it.
        for document in rollback_safe(self._store.desks).find().sort("_id", ASCENDING):
            seq += 1
            desk = desk_json(document)
            snapshot = DeskSnapshot(seq, marker.at, desk["id"], version_of(desk), desk)
            event = fit(snapshot, self._max_event_bytes)
            assert isinstance(event, DeskEvent)
            batch.append((event, f"snapshot:{label}:{seq}"))
            if len(batch) == BATCH:
                self._append_many(batch, writes=False)
                batch = []
        if batch:
            self._append_many(batch, writes=False)
        log.info("snapshot logged", extra={"seq": marker.seq, "desks": seq - marker.seq})
        self._seq = seq
        return marker.seq

    def _append_many(self, batch: Sequence[tuple[DeskEvent, str]], writes: bool = True) -> None:
        """Log `batch` in one write and count it (`writes`: events of writes, timed)."""
        self._events.append_many(batch)
        metrics.logged((event for event, _ in batch), writes)

    def _log_batch(self, changes: Sequence[Mapping[str, Any]]) -> None:
        """Log the events of `changes` in one write, skipping changes logged before."""
        if not changes:
            return
        tokens = [change["_id"]["_data"] for change in changes]
        logged = self._events.logged_at(tokens)
        batch: list[tuple[DeskEvent, str]] = []
        states: dict[str, dict[str, Any]] = {}  # desks as this batch leaves them
        settling = self._settling
        seq = self._seq
        for change, token in zip(changes, tokens, strict=True):
            desk_id = key_text(change["documentKey"]["_id"])
            if token in logged:
                log.info("already logged; skipped", extra={"desk_id": desk_id})
                if settling is not None:
                    settling.passed(desk_id, logged[token])
                continue
            if settling is not None and settling.contradicts(change, desk_id):
                log.info(
                    "change the snapshot already shows; skipped",
                    extra={"desk_id": desk_id, "operation": change["operationType"]},
                )
                continue
            event = self._event(change, seq + 1, states)
            if event is None:
                continue
            batch.append((event, token))
            states[desk_id] = event.desk
            if settling is not None:
                settling.logged(event)
            seq = event.seq
        if not batch:
            return
        self._append_many(batch)
        self._seq = seq
        if log.isEnabledFor(logging.DEBUG):  # a line per event: for tracing, not for operators
            for event, _ in batch:
                log.debug(
                    "logged", extra={"seq": event.seq, "type": event.type, "desk_id": event.desk_id}
                )

    def _event(
        self, change: Mapping[str, Any], seq: int, states: Mapping[str, dict[str, Any]]
    ) -> DeskEvent | None:
        desk_id = key_text(change["documentKey"]["_id"])
        previous = None
        if _missing_image(change):
            previous = states.get(desk_id) or self._events.last_state(desk_id)
            log.warning(
                "change without image; using the last logged state", extra={"desk_id": desk_id}
            )
        try:
            event = from_change(change, seq, previous, looked_up=not self._images)
        except (EventFormatError, KeyError, TypeError, ValueError) as error:
            # Not a change event MongoDB would send for a document: skip it rather than stop
            # on it forever, since a restart would read the same change again.
            log.error(
                "unreadable change skipped",
                extra={"desk_id": desk_id, "error": f"{type(error).__name__}: {error}"},
            )
            return None
        reduced = fit(event, self._max_event_bytes) if event is not None else None
        if reduced is not event:
            log.warning(
                "event too large for clients; logged reduced",
                extra={"desk_id": desk_id, "seq": seq, "limit_bytes": self._max_event_bytes},
            )
        assert reduced is None or isinstance(reduced, DeskEvent)
        return reduced


def _missing_image(change: Mapping[str, Any]) -> bool:
    operation = change["operationType"]
    if operation == "delete":
        return change.get("fullDocumentBeforeChange") is None
    return operation in {"update", "replace"} and change.get("fullDocument") is None


def _images_on(store: Store) -> bool:
    """Tell whether desks records pre- and post-images already (a read: any user may ask)."""
    for info in store.database.list_collections(filter={"name": DESKS}):
        return bool(info.get("options", {}).get("changeStreamPreAndPostImages", {}).get("enabled"))
    return False


def _enable_images(store: Store) -> bool:
    """Turn on pre- and post-images for desks (MongoDB 6.0+); tell whether they are on.

    Asked first: an application user (`readWrite`) may not run collMod, and the replica set's
    initialiser has turned them on already."""
    images = {"enabled": True}
    try:
        if _images_on(store):
            return True
        try:
            store.database.create_collection(DESKS, changeStreamPreAndPostImages=images)
        except CollectionInvalid:
            store.database.command("collMod", DESKS, changeStreamPreAndPostImages=images)
    except OperationFailure as error:
        log.warning(
            "pre- and post-images unavailable; update events marked looked_up",
            extra={"error": str(error)},
        )
        return False
    return True
