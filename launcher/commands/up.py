"""`desks up`: the whole system from one command."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace

from desks.settings import Settings
from launcher import lifecycle

log = logging.getLogger("desks.cli")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks up`; return the exit status."""
    from desks.store import open_store
    from launcher.system import System

    # --host binds both: a dashboard served to other machines must reach its live events too.
    hosts = {} if args.host is None else {"api_host": args.host, "broadcaster_host": args.host}
    settings = replace(settings, api_port=args.port, broadcaster_port=args.ws_port, **hosts)
    api = {"workers": args.workers, "threads": args.threads}
    stopping = lifecycle.stop_on_signal()
    crash = lifecycle.Crash(stopping)
    store = open_store(settings)
    try:
        system = System(settings, store, on_crash=crash, api=api, broadcasters=args.broadcasters)
        started = system.start(give_up=stopping)
    except OSError as error:
        print(f"desks: cannot start: {error}", file=sys.stderr)
        return 1
    if started:
        where = settings.embedded_path if settings.embedded else "MongoDB"
        print(f"desks is up on the {store.kind} store ({where})", flush=True)
        print(f"  API          {system.api_url}/api/desks", flush=True)
        print(f"  docs         {system.api_url}/docs", flush=True)
        print(f"  live events  {system.broadcaster_url}", flush=True)
        print("ready", flush=True)
        log.info("ready", extra={"api": system.api_url, "broadcaster": system.broadcaster_url})
        lifecycle.wait(stopping)
    system.stop()
    store.close()
    log.info("stopped", extra={"crashed": crash.happened})
    return crash.status
