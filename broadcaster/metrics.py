"""The broadcaster's metrics: clients, deliveries, slow clients dropped, replays, broadcast time."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# With `--processes N` every process writes its metrics to one directory and any of them
# answers /metrics for all (PROMETHEUS_MULTIPROC_DIR): clients add up, the head is the
# lowest (the process furthest behind the log); a dead process's values are dropped.
CLIENTS = Gauge(
    "desks_broadcaster_clients",
    "WebSocket clients receiving live events",
    multiprocess_mode="livesum",
)
DELIVERIES = Counter("desks_broadcaster_deliveries", "Event messages handed to clients")
EVENTS_BROADCAST = Counter("desks_broadcaster_events", "Events read from the log and sent")
SLOW_DROPPED = Counter(
    "desks_broadcaster_slow_clients_dropped", "Clients closed with 1013 for falling behind"
)
REPLAYS = Counter(
    "desks_broadcaster_replays", "Connections with after=, by outcome", ["outcome"]
)  # outcome: replayed (the backlog was sent) or reset (the position could not be served)
BROADCAST_SECONDS = Histogram(
    "desks_broadcaster_broadcast_seconds",
    "Time to hand one event to every client (the event loop is busy meanwhile)",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
HEAD_SEQ = Gauge(
    "desks_broadcaster_head_seq",
    "The newest seq the broadcaster holds",
    multiprocess_mode="livemin",
)
