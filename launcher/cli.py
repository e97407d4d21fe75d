"""The `desks` command: run the system, or one component of it, from one entry point."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import logging
import os
import re
import signal
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from desks import logs
from desks.auth import SCOPES
from desks.settings import Settings, SettingsError, retired
from desks.terminal import printable, printable_json

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')  # a Link header's next page
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
    command = {
        "up": _up,
        "api": _api,
        "watcher": _watcher,
        "broadcaster": _broadcaster,
        "consume": _consume,
        "replay": _replay,
        "verify": _verify,
        "token": _token,
    }[args.command]
    return command(settings, args)


def _stop_on_signal() -> threading.Event:
    """Turn SIGINT and SIGTERM into an event; install before announcing readiness."""
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        # Not stopping.set() here: the handler runs in the main thread, which may hold the
        # event's lock inside _wait(stopping); set it from another thread, or deadlock.
        threading.Thread(target=stopping.set, name="signal").start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    return stopping


def _wait(stopping: threading.Event) -> None:
    """Block the main thread until `stopping` is set, waking to let signal handlers run.

    A signal delivered to another thread only flags it; the main thread runs the handler at
    its next bytecode, never while blocked in an untimed wait.
    """
    while not stopping.wait(0.2):
        pass


class _Crash:
    """What a service that dies calls: stop the process, and make its exit status say so."""

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self.happened = False

    def __call__(self) -> None:
        self.happened = True
        self._stopping.set()

    @property
    def status(self) -> int:
        """Return the process's exit status: 1 after a crash, else 0."""
        return 1 if self.happened else 0


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from desks.store import open_store
    from launcher.system import System

    # --host binds both: a dashboard served to other machines must reach its live events too.
    hosts = {} if args.host is None else {"api_host": args.host, "broadcaster_host": args.host}
    settings = replace(settings, api_port=args.port, broadcaster_port=args.ws_port, **hosts)
    api = {"workers": args.workers, "threads": args.threads}
    stopping = _stop_on_signal()
    crash = _Crash(stopping)
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
        _wait(stopping)
    system.stop()
    store.close()
    log.info("stopped", extra={"crashed": crash.happened})
    return crash.status


def _api(settings: Settings, args: argparse.Namespace) -> int:
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
        options["when_ready"] = _stop_with_parent(os.getppid())
    try:
        GunicornServer(options).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _stop_with_parent(parent: int) -> Callable[[object], None]:
    """Return a gunicorn `when_ready` hook that stops the server once `parent` has died."""

    def when_ready(_server: object) -> None:
        _when_orphaned(parent, lambda: os.kill(os.getpid(), signal.SIGTERM))

    return when_ready


def _when_orphaned(
    parent: int, stop: Callable[[], None], stopping: threading.Event | None = None
) -> None:
    """Call `stop` once this process's parent `parent` is gone (an orphan is re-parented: the
    pid changes), from a thread that ends early once `stopping` is set."""
    idle = stopping or threading.Event()

    def watch() -> None:
        while os.getppid() == parent and not idle.wait(0.2):
            pass
        if not idle.is_set():
            log.warning("parent process gone; stopping", extra={"parent": parent})
            stop()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _watcher(settings: Settings, args: argparse.Namespace) -> int:
    import socket
    import uuid

    from desks.event_log import EventLog
    from desks.service import Service
    from desks.store import open_store
    from launcher import configured
    from watcher.health import HealthServer
    from watcher.lease import Lease

    stopping = _stop_on_signal()
    crash = _Crash(stopping)
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
    _wait(stopping)
    service.stop()
    health.stop()
    store.close()
    return crash.status


def _broadcaster(settings: Settings, args: argparse.Namespace) -> int:
    from broadcaster.server import Broadcaster
    from desks.event_log import EventLog
    from desks.service import Service
    from desks.store import open_store
    from launcher import configured

    if args.processes > 1:
        return _broadcaster_processes(settings, args)
    stopping = _stop_on_signal()
    crash = _Crash(stopping)
    if args.supervised:  # a child of --processes: it must not outlive its parent (kill -9)
        _when_orphaned(os.getppid(), stopping.set, stopping)
    _open_files_for(settings.max_connections)
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
    _wait(stopping)
    service.stop(5)
    store.close()
    return crash.status


def _broadcaster_processes(settings: Settings, args: argparse.Namespace) -> int:
    from desks.store import open_store
    from launcher.broadcasters import BroadcasterProcesses

    stopping = _stop_on_signal()
    crash = _Crash(stopping)
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
    _wait(stopping)
    processes.stop()
    return crash.status


def _open_files_for(connections: int) -> None:
    """Raise the open-file limit to the hard limit (each client holds a file); warn when even
    that cannot hold `connections` clients (beyond it, accepts fail instead of a 503)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    spare = 64  # the store, the log, listening sockets, probes
    if hard != resource.RLIM_INFINITY and connections + spare > hard:
        log.warning(
            "more connections allowed than open files",
            extra={"max_connections": connections, "open_files": hard},
        )


def _consume(settings: Settings, args: argparse.Namespace) -> int:
    from desks.consumer import Consumer

    consumer = Consumer(
        args.url,
        args.after,
        args.lang,
        lambda line: print(line, flush=True),  # desk values arrive escaped (console)
        desk=args.desk,
        token=args.token,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        refused = asyncio.run(consumer.run())
    except KeyboardInterrupt:
        return 0
    print(f"desks consume: {refused}", file=sys.stderr)
    return 1


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from desks.auth import mint

    if args.private_key:
        with open(args.private_key, encoding="ascii") as file:
            key, algorithm = file.read(), "RS256"
    elif settings.jwt_secret:
        key, algorithm = settings.jwt_secret, "HS256"
    else:
        print("desks token: set DESKS_JWT_SECRET or give --private-key", file=sys.stderr)
        return 2
    scopes = sorted(set(args.scope))
    print(
        mint(
            key,
            scopes,
            args.ttl,
            algorithm,
            args.subject,
            settings.jwt_issuer,
            settings.jwt_audience,
        )
    )
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from desks.store import open_store
    from desks.verify import verify

    store = open_store(settings)
    try:
        verdict = verify(store)
    finally:
        store.close()
    if verdict.agree:
        print(f"log and store agree: {verdict.desks} desks, {verdict.events} events")
        return 0
    for difference in verdict.differences:
        print(printable(str(difference)))
    print(
        f"log and store differ: {len(verdict.differences)} differences "
        f"({verdict.desks} desks, {verdict.events} events)",
        file=sys.stderr,
    )
    return 1


def _read_list(url: str, token: str | None) -> tuple[list[Any], int | None] | None:
    """Return the JSON list the API answers at `url` and the cursor of its next page (the
    `after` of its `Link: rel="next"`), or None having said why it cannot."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            found = json.load(response)
            link = _NEXT.search(response.headers.get("Link") or "")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # The server's words (a reason phrase) reach the terminal escaped, like its values.
        print(printable(f"desks replay: cannot read {url}: {error}"), file=sys.stderr)
        return None
    if not isinstance(found, list):
        print(printable(f"desks replay: {url} did not answer a list"), file=sys.stderr)
        return None
    # Only the cursor is taken from the link: the next URL is built on --api like the first
    # (an API behind a path prefix links from the root), and the token goes nowhere else.
    after = parse_qs(urlsplit(link.group(1)).query).get("after", [""])[0] if link else ""
    return found, int(after) if after.isdigit() else None


def _print_json(value: Any) -> None:
    # Values written around the API may hold controls or bidi characters: escaped, same JSON.
    print(printable_json(json.dumps(value, ensure_ascii=False)), flush=True)


def _replay_as_of(args: argparse.Namespace) -> int:
    # By cursor: each page names the next (pages by number cost O(N^2) over a registry).
    after: int | None = 0
    while after is not None:
        query = urlencode({"as_of": args.as_of, "after": after, "page_size": 1000})
        read = _read_list(f"{args.api.rstrip('/')}/api/desks?{query}", args.token)
        if read is None:
            return 1
        desks, cursor = read
        for desk in desks:
            _print_json(desk)
        if cursor is not None and cursor <= after:
            print(f"desks replay: the API's next page does not move on ({cursor})", file=sys.stderr)
            return 1
        after = cursor
    return 0


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    if args.as_of is not None:
        return _replay_as_of(args)
    after, remaining = args.after, args.limit
    while remaining is None or remaining > 0:
        page = 1000 if remaining is None else min(remaining, 1000)
        path = "/api/events" if args.desk is None else f"/api/desks/{quote(args.desk, '')}/events"
        url = f"{args.api.rstrip('/')}{path}?{urlencode({'after': after, 'limit': page})}"
        read = _read_list(url, args.token)
        if read is None:
            return 1
        events, _ = read
        for event in events:
            _print_json(event)
        if len(events) < page:
            break
        after = events[-1]["seq"]
        if remaining is not None:
            remaining -= len(events)
    return 0


if __name__ == "__main__":
    sys.exit(main())
