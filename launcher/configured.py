"""Components built as the settings say, once for `desks up` and the single-role commands."""

from __future__ import annotations

from broadcaster.limits import Limits
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import Store
from watcher.checkpoint import Checkpoint
from watcher.lease import Lease
from watcher.stream import Watcher


def watcher(settings: Settings, store: Store, events: EventLog, lease: Lease) -> Watcher:
    """Return a watcher holding `lease`, its checkpoint fenced by the same lease."""
    checkpoint = Checkpoint(
        store.database, idle_interval=settings.checkpoint_idle_seconds, lease=lease
    )
    return Watcher(
        store,
        events,
        checkpoint,
        max_await_ms=settings.watcher_max_await_ms,
        lease=lease,
        max_event_bytes=settings.max_event_bytes,
    )


def limits(settings: Settings) -> Limits:
    """Return what one broadcaster client may cost."""
    return Limits(
        max_buffer=settings.client_buffer_bytes,
        ahead_wait=settings.ahead_wait_seconds,
        max_connections=settings.max_connections,
        max_per_address=settings.max_connections_per_address,
    )
