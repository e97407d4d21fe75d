"""The watcher's metrics: events logged, the log's head, write-to-log lag, checkpoint age, role."""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime

from prometheus_client import Counter, Enum, Gauge, Histogram

from desks.events import Event

EVENTS_LOGGED = Counter("desks_watcher_events_logged", "Events appended to the log", ["type"])
WRITE_TO_LOG = Histogram(
    "desks_watcher_write_to_log_seconds",
    "From a write's wall time (MongoDB's) to its event being in the log",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CHECKPOINT_AGE = Gauge(
    "desks_watcher_checkpoint_age_seconds", "Seconds since the watcher last saved its checkpoint"
)
WATCHER_ROLE = Enum(
    "desks_watcher_role",
    "What the watcher is doing",
    states=["starting", "active", "standby", "retrying", "stopped"],
)
# Beside each broadcaster's desks_broadcaster_head_seq: how far behind the log it is.
HEAD_SEQ = Gauge("desks_watcher_head_seq", "The last seq this watcher appended to the log")


def logged(events: Iterable[Event], writes: bool = True) -> None:
    """Count logged events and, for `writes` (not the watcher's own resyncs and snapshots,
    whose `at` is when it logged them), time each from its wall time (`at`) to now."""
    now = time.time()
    for event in events:
        EVENTS_LOGGED.labels(event.type).inc()
        HEAD_SEQ.set(event.seq)
        if not writes:
            continue
        try:
            written = datetime.fromisoformat(event.at).timestamp()
        except ValueError:
            continue
        WRITE_TO_LOG.observe(max(0.0, now - written))
