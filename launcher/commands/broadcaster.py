"""`desks broadcaster`: one process following the log, or N sharing a port."""

from __future__ import annotations

import argparse
import os
import sys

from desks.settings import Settings
from launcher import lifecycle


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks broadcaster`; return the exit status."""
    from broadcaster.server import Broadcaster
    from desks.event_log import EventLog
    from desks.service import Service
    from desks.store import open_store
    from launcher import configured

    if args.processes > 1:
        return _broadcaster_processes(settings, args)
    stopping = lifecycle.stop_on_signal()
    crash = lifecycle.Crash(stopping)
    if args.supervised:  # a child of --processes: it must not outlive its parent (kill -9)
        lifecycle.when_orphaned(os.getppid(), stopping.set, stopping)
    lifecycle.open_files_for(settings.max_connections)
    store = open_store(settings)
    limits = configured.limits(settings)
    server = Broadcaster(
        EventLog(store.database),
        settings.history_size,
        limits,
        settings.verifier(),
        settings.page_origins,
    )
    service = Service(
        "broadcaster",
        lambda stop: server.run(args.host, args.port, stop, reuse_port=args.supervised),
        crash,
    )
    service.start()
    lifecycle.wait(stopping)
    service.stop(5)
    store.close()
    return crash.status


def _broadcaster_processes(settings: Settings, args: argparse.Namespace) -> int:
    from desks.store import open_store
    from launcher.broadcasters import BroadcasterProcesses

    stopping = lifecycle.stop_on_signal()
    crash = lifecycle.Crash(stopping)
    # The children open the store; opened here first, a store they cannot open is said once.
    open_store(settings).close()
    try:
        processes = BroadcasterProcesses(
            settings, args.host, args.port, args.processes, on_crash=crash
        )
    except OSError as error:
        print(f"desks: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    processes.start()
    lifecycle.wait(stopping)
    processes.stop()
    return crash.status
