"""The embedded store at realistic sizes: writes, catch-up, the event log and memory.

Each subcommand prints one line and writes a JSON record under bench/results/:

    python -m bench.store writes --desks 100000   # POST/s, POST and write-to-client p50/p99,
                                                  # list page + count, RSS of `desks up`
    python -m bench.store catchup --backlog 100000  # watcher: events logged per second
    python -m bench.store events --events 1000000   # GET /api/events?after=<head-100>, a
                                                    # desk's timeline, the registry as_of
    python -m bench.store wakeup --writes 500       # a commit in one process -> a stream in
                                                    # another
    python -m bench.store registry --desks 100000   # a whole registry as of one seq: in one
                                                    # answer, by cursor (--by-page: by number)

The store is a file in a temporary directory, prefilled through the engine (desks with
insert_many, their events by a real watcher catching up), then served by `desks up` in its
own process, as a user runs it; the load comes from this process over HTTP keep-alive.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from api.repository import DeskRepository
from bench.common import RESULTS, free_port, percentiles, process_tree, record, run_threads
from desks.desk import utc_now
from desks.event_log import EventLog
from desks.service import Service
from desks.settings import Settings
from desks.store import Store, open_store
from watcher.checkpoint import Checkpoint
from watcher.stream import Watcher

ROOT = Path(__file__).resolve().parents[1]
HISTORY = 1_000_000  # oplog entries: a backlog needs twice its size (the watcher writes too)


# -- preparing a store ---------------------------------------------------------------------


def prefill(path: str, desks: int) -> float:
    """Insert `desks` desks and log their events; return the watcher's events per second."""
    store = open_store(Settings(embedded_path=path, embedded_history_size=HISTORY))
    checkpoint = Checkpoint(store.database)
    with store.desks.watch() as stream:  # the watcher will resume from before the desks
        checkpoint.save(stream.resume_token)
    now = utc_now()
    for start in range(0, desks, 1000):
        store.desks.insert_many(
            [
                {
                    "name": f"Desk {n}",
                    "width": 100 + n % 100,
                    "height": 50,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + 1000, desks))
            ]
        )
    # The indexes the API makes on its first request, as a store written through it has
    # them: otherwise the first page after start-up builds one over every desk (1.6 s at
    # 100,000), a migration's cost counted as a page's.
    DeskRepository(store.desks).ensure_indexes()
    rate = catch_up(store, desks)
    store.close()
    return rate


def catch_up(store: Store, count: int) -> float:
    """Run a watcher until `count` more events are logged; return events per second."""
    events = EventLog(store.database)
    target = events.head() + count
    watcher = Watcher(store, events, Checkpoint(store.database))
    service = Service("watcher", watcher.run)
    started = time.perf_counter()
    service.start()
    while events.head() < target:
        time.sleep(0.005)  # a poll of the head: its cost is nothing beside the watcher's
    elapsed = time.perf_counter() - started
    service.stop()
    return count / elapsed if elapsed else float("inf")


# -- running `desks up` ----------------------------------------------------------------------


class Up:
    """`desks up` on a store file, in its own process, on free ports."""

    def __init__(self, path: str, port: int, ws_port: int) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DESKS_EMBEDDED_PATH": path,
            "DESKS_EMBEDDED_HISTORY_SIZE": str(HISTORY),
            "DESKS_LOG_LEVEL": "WARNING",
            # Every benchmark client comes from 127.0.0.1: no per-address cap.
            "DESKS_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
            "DESKS_MAX_CONNECTIONS": "1000000",
        }
        env.pop("MONGODB_URI", None)
        command = [
            sys.executable,
            "-m",
            "launcher.cli",
            "up",
            "--port",
            str(port),
            "--ws-port",
            str(ws_port),
        ]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip() == "ready":
                break
        else:
            raise RuntimeError("desks up exited before it was ready")
        self.port, self.ws = port, f"ws://127.0.0.1:{ws_port}/"

    def memory(self) -> dict[str, float]:
        """Return the memory of `desks up` and its children (gunicorn's arbiter and workers
        serve the API), in MiB: resident set size now and at its peak, summed, and the
        proportional set size (PSS: each shared page divided among the processes sharing it,
        so pages the workers share with each other count once in all)."""
        totals = {"VmRSS": 0.0, "VmHWM": 0.0, "Pss": 0.0}
        for pid in process_tree(self.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            fields.update(line.split(":", 1) for line in rollup.splitlines()[1:] if ":" in line)
            for key in totals:
                totals[key] += int(fields[key].split()[0]) / 1024
        return {key: round(value, 1) for key, value in totals.items()}

    def close(self) -> None:
        self.process.terminate()
        self.process.communicate(timeout=10)


def request(
    connection: http.client.HTTPConnection, method: str, path: str, body: Any = None
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    connection.request(method, path, json.dumps(body) if body is not None else None, headers)
    response = connection.getresponse()
    data = response.read()
    return response.status, json.loads(data) if data else None, dict(response.headers)


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


# -- benchmarks ----------------------------------------------------------------------------


def bench_writes(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "store.sqlite3")
    prefill(path, args.desks)
    up = Up(path, free_port(), free_port())
    try:
        page = http.client.HTTPConnection("127.0.0.1", up.port)
        request(page, "GET", "/api/desks?page=1&page_size=1")  # builds the list index once
        timed(lambda: request(page, "GET", "/api/desks?page=1"), 30)  # warm-up, not measured
        list_ms = percentiles(timed(lambda: request(page, "GET", "/api/desks?page=1"), 50))
        last = max(1, args.desks // 10)
        last_ms = percentiles(timed(lambda: request(page, "GET", f"/api/desks?page={last}"), 20))
        # A name filter is a substring match: no index serves it, every desk is read.
        named = percentiles(timed(lambda: request(page, "GET", "/api/desks?name=desk%2099"), 5))
        sent: dict[str, float] = {}
        received: dict[str, float] = {}
        post_ms: list[float] = []
        expected = args.writes // args.writers * args.writers
        with connect(up.ws, max_queue=None) as client:
            json.loads(client.recv(timeout=10))  # hello

            def listen() -> None:
                while len(received) < expected:
                    event = json.loads(client.recv(timeout=60))
                    received[event["desk_id"]] = time.perf_counter()

            listener = threading.Thread(target=listen)
            listener.start()

            def write(writer: int) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", up.port)
                for n in range(args.writes // args.writers):
                    body = {"name": f"bench {writer}-{n}", "width": 120, "height": 60}
                    started = time.perf_counter()
                    status, desk, _ = request(connection, "POST", "/api/desks", body)
                    post_ms.append((time.perf_counter() - started) * 1000)
                    assert status == 201, desk
                    sent[desk["id"]] = started

            elapsed = run_threads(write, args.writers)
            listener.join(120)
        to_client = [(received[key] - sent[key]) * 1000 for key in sent if key in received]
        return {
            "parameters": {"stored_desks": args.desks, "writes": expected, "writers": args.writers},
            "post_per_s": round(expected / elapsed, 1),
            "post_ms": percentiles(post_ms),
            "write_to_client_ms": percentiles(to_client),
            "delivered": len(to_client),
            "list_first_page_ms": list_ms,
            "list_page_near_end_ms": last_ms,
            "list_filtered_by_name_ms": named,
            "rss_mib": up.memory(),
            "file_mib": round(sum(f.stat().st_size for f in Path(directory).iterdir()) / 2**20, 1),
        }
    finally:
        up.close()


def bench_catchup(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "store.sqlite3")
    rate = prefill(path, args.backlog)
    return {"parameters": {"backlog": args.backlog}, "events_per_s": round(rate, 1)}


def bench_events(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "store.sqlite3")
    store = open_store(Settings(embedded_path=path, embedded_history_size=HISTORY))
    log = EventLog(store.database)
    log.ensure_indexes()
    log.epoch()
    at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    for start in range(1, args.events + 1, 5000):
        store.database["desk_events"].insert_many(
            [
                {
                    "_id": seq,
                    "token": f"bench:{seq}",
                    "type": "desk_created",
                    "at": at,
                    "desk_id": f"{seq:024x}",
                    "version": 1,
                    "desk": {
                        "id": f"{seq:024x}",
                        "name": f"Desk {seq}",
                        "width": 100,
                        "height": 50,
                        "version": 1,
                        "created_at": at,
                        "updated_at": at,
                    },
                }
                for seq in range(start, min(start + 5000, args.events + 1))
            ]
        )
    store.close()
    up = Up(path, free_port(), free_port())
    try:
        connection = http.client.HTTPConnection("127.0.0.1", up.port, timeout=120)
        after = args.events - 100
        samples = timed(
            lambda: request(connection, "GET", f"/api/events?after={after}&limit=100"), 200
        )
        status, page, headers = request(connection, "GET", f"/api/events?after={after}")
        assert status == 200 and len(page) == 100 and headers["X-Event-Seq"] == str(args.events)
        desk = page[0]["desk_id"]
        timeline = timed(lambda: request(connection, "GET", f"/api/desks/{desk}/events"), 200)
        as_of = args.events // 2
        past = f"/api/desks?as_of={as_of}"
        first = timed(lambda: request(connection, "GET", past), 50)
        status, desks, headers = request(connection, "GET", past)
        assert status == 200 and headers["X-Event-Seq"] == str(as_of) and len(desks) == 10
        last = f"{past}&page={as_of // 10}"  # every desk of the span walked
        deep = timed(lambda: request(connection, "GET", last), 3)
        named = timed(lambda: request(connection, "GET", f"{past}&name=desk%20123"), 3)
        return {
            "parameters": {"events": args.events, "after": after},
            "get_events_ms": percentiles(samples),
            "desk_timeline_ms": percentiles(timeline),
            "as_of_half_the_log_ms": percentiles(first),
            "as_of_half_the_log_last_page_ms": percentiles(deep),
            "as_of_half_the_log_by_name_ms": percentiles(named),
            "rss_mib": up.memory(),
        }
    finally:
        up.close()


def bench_registry(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    """Read a whole registry over HTTP: as stored now in one answer (/api/registry, as the
    dashboard does); as of one seq in one answer (/api/registry?as_of=, the log folded), by
    cursor (pages of 1,000 following Link rel=next) and, for comparison, by page number."""
    path = os.path.join(directory, "store.sqlite3")
    prefill(path, args.desks)
    up = Up(path, free_port(), free_port())
    try:
        connection = http.client.HTTPConnection("127.0.0.1", up.port, timeout=600)
        _, _, headers = request(connection, "GET", "/api/desks?page_size=1")
        seq = headers["X-Event-Seq"]
        figures: dict[str, Any] = {"parameters": {"desks": args.desks, "by_page": args.by_page}}
        cursor_s = []
        for _ in range(args.reps):
            url: str | None = f"/api/desks?as_of={seq}&after=0&page_size=1000"
            read, started = 0, time.perf_counter()
            while url is not None:
                status, page, headers = request(connection, "GET", url)
                assert status == 200, page
                read += len(page)
                link = headers.get("Link")
                url = link[1 : link.index(">")] if link else None
            cursor_s.append(time.perf_counter() - started)
            assert read == args.desks, read
        figures["by_cursor_s"] = [round(s, 2) for s in cursor_s]
        whole_s = []
        for _ in range(args.reps):
            started = time.perf_counter()
            status, desks, _ = request(connection, "GET", f"/api/registry?as_of={seq}")
            whole_s.append(time.perf_counter() - started)
            assert status == 200 and len(desks) == args.desks, status
        figures["in_one_answer_s"] = [round(s, 2) for s in whole_s]  # /api/registry?as_of=
        now_s = []
        for _ in range(args.reps):
            started = time.perf_counter()
            status, desks, _ = request(connection, "GET", "/api/registry")
            now_s.append(time.perf_counter() - started)
            assert status == 200 and len(desks) == args.desks, status
        figures["as_stored_in_one_answer_s"] = [round(s, 2) for s in now_s]  # /api/registry
        if args.by_page:
            started, read, number = time.perf_counter(), 0, 1
            while read < args.desks:
                url = f"/api/desks?as_of={seq}&page={number}&page_size=100"
                status, page, _ = request(connection, "GET", url)
                read, number = read + len(page), number + 1
            figures["by_page_number_s"] = round(time.perf_counter() - started, 2)
        return figures
    finally:
        up.close()


def bench_wakeup(args: argparse.Namespace, directory: str) -> dict[str, Any]:
    """Measure how long a commit in one process takes to reach a stream in another."""
    path = os.path.join(directory, "store.sqlite3")
    store = open_store(Settings(embedded_path=path))
    writer_code = (
        "import sys, time\n"
        "from embedded import EmbeddedClient\n"
        "desks = EmbeddedClient(sys.argv[1])['desks']['desks']\n"
        "for n in range(int(sys.argv[2])):\n"
        "    time.sleep(0.02)\n"
        "    desks.insert_one({'n': n, 'sent': time.time()})\n"
    )
    delays: list[float] = []
    with store.desks.watch(max_await_time_ms=1000) as stream:
        writer = subprocess.Popen(
            [sys.executable, "-c", writer_code, path, str(args.writes)], cwd=ROOT
        )
        while len(delays) < args.writes:
            change = stream.try_next()
            if change is not None:
                delays.append((time.time() - change["fullDocument"]["sent"]) * 1000)
        writer.wait(60)
    store.close()
    return {
        "parameters": {"writes": args.writes},
        "commit_to_other_process_ms": percentiles(delays),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.store")
    commands = parser.add_subparsers(dest="command", required=True)
    writes = commands.add_parser("writes")
    writes.add_argument("--desks", type=int, default=0)
    writes.add_argument("--writes", type=int, default=3000)
    writes.add_argument("--writers", type=int, default=4)
    catchup = commands.add_parser("catchup")
    catchup.add_argument("--backlog", type=int, default=100_000)
    events = commands.add_parser("events")
    events.add_argument("--events", type=int, default=1_000_000)
    registry = commands.add_parser("registry")
    registry.add_argument("--desks", type=int, default=100_000)
    registry.add_argument("--reps", type=int, default=3)
    registry.add_argument("--by-page", action="store_true", help="also by page number (slow)")
    wakeup = commands.add_parser("wakeup")
    wakeup.add_argument("--writes", type=int, default=500)
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    run = {
        "writes": bench_writes,
        "catchup": bench_catchup,
        "events": bench_events,
        "wakeup": bench_wakeup,
        "registry": bench_registry,
    }
    with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
        figures = run[args.command](args, directory)
    name = f"store-{args.command}-{'-'.join(str(v) for v in figures['parameters'].values())}"
    record(f"store.{args.command}", name, figures, args.results)


if __name__ == "__main__":
    main()
