"""Prometheus exposition for every service (prometheus-client): `/metrics` in text format.

Each service defines its metrics beside its code (api/metrics.py, watcher/metrics.py,
broadcaster/metrics.py; panels in monitoring/grafana/dashboards/desks.json). The API's gunicorn
workers are separate processes: `desks api` points PROMETHEUS_MULTIPROC_DIR at a directory of
its own and /metrics adds the workers up; so does `desks broadcaster --processes N` for its
processes on one port. The watcher and a lone broadcaster are one process each (in `desks up`,
one process: the broadcaster's /metrics shows the watcher's metrics too).
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client import multiprocess as _multiprocess


def exposition() -> tuple[bytes, str]:
    """Return this process's metrics (all workers', under gunicorn) as Prometheus text."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
