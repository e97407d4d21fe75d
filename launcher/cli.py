"""The `desks` command: run the system, or one component of it, from one entry point."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from desks import logs
from desks.auth import SCOPES
from desks.settings import Settings, SettingsError, retired

# Commands whose processes must see one store: an in-memory one would be each process's own.
SHARED_STORE_COMMANDS = {"up", "api", "watcher", "broadcaster", "verify"}

log = logging.getLogger("desks.cli")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range: {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _seq(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more: {value}")
    return value


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="desks",
        description="Desk registry with live notifications: REST API, watcher, broadcaster.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run API (gunicorn), watcher and broadcaster together, on a store file"
    )
    up.add_argument(
        "--host",
        help=f"API and broadcaster address (else {settings.api_host} and"
        f" {settings.broadcaster_host}: DESKS_API_HOST, DESKS_BROADCASTER_HOST)",
    )
    up.add_argument("--port", type=_port, default=settings.api_port, help="API port (%(default)s)")
    up.add_argument(
        "--ws-port",
        type=_port,
        default=settings.broadcaster_port,
        help="broadcaster port (%(default)s)",
    )
    up.add_argument("--workers", type=_positive, default=2, help="API processes (%(default)s)")
    up.add_argument(
        "--broadcasters",
        type=_positive,
        default=1,
        help="broadcaster processes sharing --ws-port, this one included (%(default)s)",
    )
    up.add_argument("--threads", type=_positive, default=4, help="threads each (%(default)s)")

    api = commands.add_parser(
        "api", help="serve the REST API with gunicorn (needs MONGODB_URI or a store file)"
    )
    api.add_argument("--host", default=settings.api_host, help="address to bind (%(default)s)")
    api.add_argument("--port", type=_port, default=settings.api_port, help="port (%(default)s)")
    api.add_argument("--workers", type=_positive, default=2, help="processes (%(default)s)")
    api.add_argument("--threads", type=_positive, default=4, help="threads each (%(default)s)")
    api.add_argument(
        "--fd", type=int, help="serve on this inherited listening socket instead (desks up)"
    )
    api.add_argument(
        "--control-socket",
        metavar="PATH",
        help="open gunicorn's control socket (gunicornc) here, mode 0600 (default: none)",
    )

    watcher = commands.add_parser(
        "watcher",
        help="tail the change stream into the event log (needs MONGODB_URI or a store file)",
    )
    watcher.add_argument("--health-host", default="127.0.0.1", help="probe address (%(default)s)")

    broadcaster = commands.add_parser(
        "broadcaster",
        help="follow the event log and serve it to WebSocket clients (needs MONGODB_URI or a "
        "store file)",
    )
    broadcaster.add_argument("--host", default=settings.broadcaster_host, help="(%(default)s)")
    broadcaster.add_argument(
        "--port", type=_port, default=settings.broadcaster_port, help="(%(default)s)"
    )
    broadcaster.add_argument(
        "--processes",
        type=_positive,
        default=1,
        help="processes sharing the port (SO_REUSEPORT), each replaced if it dies (%(default)s)",
    )
    # One of --processes' children: shares the port, and stops when its parent is gone.
    broadcaster.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)

    consume = commands.add_parser("consume", help="print desk events as they happen")
    consume.add_argument("--url", default=settings.broadcaster_url, help="(%(default)s)")
    consume.add_argument("--after", type=_seq, help="first print the events after this seq")
    consume.add_argument("--lang", choices=("es", "en"), default="es", help="(%(default)s)")
    consume.add_argument("--desk", help="print only this desk's events (and resyncs)")
    consume.add_argument(
        "--token", default=settings.token, help="bearer token with desks:read (DESKS_TOKEN)"
    )

    token = commands.add_parser(
        "token", help="mint a bearer token for development (DESKS_JWT_SECRET, or --private-key)"
    )
    token.add_argument(
        "--scope",
        action="append",
        choices=SCOPES,
        required=True,
        help="desks:read and/or desks:write (repeat for both)",
    )
    token.add_argument("--ttl", type=_positive, default=3600, help="seconds (%(default)s)")
    token.add_argument("--subject", default="desks-dev", help="the sub claim (%(default)s)")
    token.add_argument(
        "--private-key", help="sign RS256 with this PEM private key file instead of the secret"
    )

    commands.add_parser(
        "verify",
        help="fold the event log and compare it with the desks collection (exit 1 on a "
        "difference); needs MONGODB_URI or a store file",
    )

    replay = commands.add_parser("replay", help="print logged events as JSON lines")
    replay.add_argument("--after", type=_seq, default=0, help="start after this seq (0)")
    replay.add_argument("--limit", type=_positive, help="print at most this many")
    replay.add_argument("--desk", help="only this desk's events (its timeline)")
    replay.add_argument(
        "--as-of", type=_seq, help="print the desks as they stood right after this seq instead"
    )
    replay.add_argument(
        "--api",
        default=f"http://{settings.api_host}:{settings.api_port}",
        help="the API to read from (%(default)s)",
    )
    replay.add_argument(
        "--token", default=settings.token, help="bearer token with desks:read (DESKS_TOKEN)"
    )
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
    logs.configure(settings.log_level, settings.log_format, service=args.command)
    for variable, why in retired().items():
        log.warning("setting no longer used", extra={"variable": variable, "reason": why})
    if args.command in SHARED_STORE_COMMANDS and not settings.shared_store:
        # Each process would get its own empty in-memory store: refuse rather than mislead.
        parser.error(
            f"desks {args.command} needs a store other processes share (the API runs in "
            "gunicorn worker processes): MONGODB_URI, or DESKS_EMBEDDED_PATH naming a file "
            "(the default), not :memory:"
        )
    # Said once, by the process the operator started (not by each child it starts).
    serving = (args.command == "up" or args.command == "broadcaster" and not args.supervised) or (
        args.command == "api" and args.fd is None
    )
    if serving and not settings.verifier().enabled:  # `desks up` warns for its API child too
        log.warning(
            "authentication is off: anyone who reaches this service can read and write desks; "
            "set DESKS_JWT_SECRET or DESKS_JWT_PUBLIC_KEY"
        )
    # Imported when run: each command pulls in only its own components.
    command = importlib.import_module(f"launcher.commands.{args.command}")
    status: int = command.run(settings, args)
    return status


if __name__ == "__main__":
    sys.exit(main())
