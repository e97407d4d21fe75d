"""The `desks` command: run the API, or the whole system, from one entry point."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from desks import logs
from desks.settings import Settings, SettingsError
from desks.store import open_store

log = logging.getLogger("desks.cli")


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="desks",
        description="Desk registry with live notifications: REST API, watcher, broadcaster.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    api = commands.add_parser("api", help="serve the REST API with gunicorn (needs MONGODB_URI)")
    api.add_argument("--host", default=settings.api_host, help="address to bind (%(default)s)")
    api.add_argument("--port", type=int, default=settings.api_port, help="port (%(default)s)")
    api.add_argument("--workers", type=int, default=2, help="worker processes (%(default)s)")
    api.add_argument("--threads", type=int, default=4, help="threads per worker (%(default)s)")

    up = commands.add_parser("up", help="run the whole system in one process (embedded store)")
    up.add_argument("--host", default=settings.api_host, help="address to bind (%(default)s)")
    up.add_argument("--port", type=int, default=settings.api_port, help="API port (%(default)s)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `desks` command line; return the exit status."""
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"desks: {error}", file=sys.stderr)
        return 2
    parser = _parser(settings)
    args = parser.parse_args(argv)
    for name in ("port", "workers", "threads"):
        value = getattr(args, name, None)
        if value is not None and not (0 <= value <= 65535 and (name == "port" or value >= 1)):
            parser.error(f"--{name} out of range: {value}")
    logs.configure(settings.log_level)
    if args.command == "api":
        return _api(parser, settings, args)
    return _up(settings, args)


def _api(parser: argparse.ArgumentParser, settings: Settings, args: argparse.Namespace) -> int:
    if settings.mongodb_uri is None:
        # Each gunicorn worker would get its own empty in-memory store: refuse rather than lie.
        parser.error("desks api needs MONGODB_URI; for the embedded store run `desks up`")
    from api.server import GunicornServer

    GunicornServer(
        {
            "bind": f"{args.host}:{args.port}",
            "workers": args.workers,
            "threads": args.threads,
            "accesslog": None,
            "graceful_timeout": 5,
        }
    ).run()
    return 0


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from api import create_app
    from api.server import InProcessServer

    store = open_store(settings)
    server = InProcessServer(create_app(store=store), args.host, args.port)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    server.start()
    base = f"http://{args.host}:{server.port}"
    print(f"desks is up on the {store.kind} store", flush=True)
    print(f"  API      {base}/api/desks", flush=True)
    print(f"  docs     {base}/docs", flush=True)
    print("ready", flush=True)
    log.info("ready", extra={"api": base, "store": store.kind})
    stopping.wait()
    server.stop()
    store.close()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
