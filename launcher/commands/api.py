"""`desks api`: the REST API in gunicorn (alone, or as the child of `desks up`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from desks.settings import Settings
from launcher import lifecycle


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks api`; return the exit status."""
    import shutil
    import tempfile

    # Before prometheus_client is imported: the workers' metrics go to files there, which
    # /metrics adds up. A directory of this run's own: stale files would count twice.
    metrics_dir = tempfile.mkdtemp(prefix="desks-api-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from prometheus_client import multiprocess

    from api.server import GunicornServer, gunicorn_options

    bind = f"fd://{args.fd}" if args.fd is not None else f"{args.host}:{args.port}"
    options = gunicorn_options(
        bind, args.workers, args.threads, args.control_socket, settings.log_level
    )

    def forget_worker(_server: object, worker: Any) -> None:
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    options["child_exit"] = forget_worker
    if args.fd is not None:  # the child of `desks up`: it must not outlive it (kill -9)
        options["when_ready"] = lifecycle.stop_with_parent(os.getppid())
    try:
        GunicornServer(options).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
