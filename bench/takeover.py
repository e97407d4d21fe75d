"""Watcher failover: from the active watcher's death to the standby tailing (embedded store).

Run: .venv/bin/python -m bench.takeover [--ttl 2] [--rounds 5]
The active watcher "dies" without releasing its lease, as under kill -9. Writes
bench/results/takeover-<ttl>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench.common import RESULTS, percentiles, record
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import open_store
from watcher.checkpoint import Checkpoint
from watcher.lease import Lease
from watcher.stream import Watcher


def wait(condition: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    store = open_store(Settings(embedded_path=":memory:"))
    events = EventLog(store.database)
    takeovers = []
    for round_ in range(args.rounds):
        pair = []
        for name in ("active", "standby"):
            lease = Lease(store.database, f"{name}-{round_}", args.ttl)
            watcher = Watcher(store, events, Checkpoint(store.database), 50, lease=lease)
            service = Service(name, watcher.run)
            service.start()
            pair.append((service, watcher, lease))
            wait(lambda w=watcher: w.role in {"active", "standby"})
        (active, active_watcher, active_lease), (standby, standby_watcher, _) = pair
        assert active_watcher.role == "active"
        active_lease.release = lambda: None  # type: ignore[method-assign]
        active.stop()
        died = time.monotonic()
        wait(lambda w=standby_watcher: w.role == "active" and w.healthy.is_set())
        takeovers.append(time.monotonic() - died)
        standby.stop()
    figures = {
        "parameters": {"ttl_s": args.ttl, "rounds": args.rounds},
        "takeover_s": {
            "median": round(statistics.median(takeovers), 2),
            "max": round(max(takeovers), 2),
        },
        "takeover_ms": percentiles([seconds * 1000 for seconds in takeovers]),
    }
    record("takeover", f"takeover-{args.ttl:g}", figures, args.results)


if __name__ == "__main__":
    main()
