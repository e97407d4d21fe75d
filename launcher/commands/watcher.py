"""`desks watcher`: the change stream to the event log, with its probes."""

from __future__ import annotations

import argparse
import logging
import os

from desks.settings import Settings
from launcher import lifecycle

log = logging.getLogger("desks.cli")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks watcher`; return the exit status."""
    import socket
    import uuid

    from desks.event_log import EventLog
    from desks.service import Service
    from desks.store import open_store
    from launcher import configured
    from watcher.health import HealthServer
    from watcher.lease import Lease

    stopping = lifecycle.stop_on_signal()
    crash = lifecycle.Crash(stopping)
    store = open_store(settings)
    events = EventLog(store.database)
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    lease = Lease(store.database, owner, settings.lease_ttl_seconds)
    watcher = configured.watcher(settings, store, events, lease)
    service = Service("watcher", watcher.run, crash)
    health = HealthServer(args.health_host, settings.watcher_health_port, watcher)
    health.start()
    service.start()
    log.info("watcher started", extra={"owner": owner, "health_port": health.port})
    lifecycle.wait(stopping)
    service.stop()
    health.stop()
    store.close()
    return crash.status
