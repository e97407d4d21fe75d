"""Fan-out side by side: our broadcaster, plain broadcast(), and one send() per client in turn.

    python -m bench.fanout --mode flood --clients 100,1000,5000 --events 200
    python -m bench.fanout --mode paced --clients 1000 --rate 50 --seconds 10
    python -m bench.fanout --mode flood --clients 5000 --servers ours --ours-processes 2
    python -m bench.fanout --mode flood --clients 5000 --client c --client-pause-us 2000

Each server runs alone in a process; K connections are held by lean clients (bench/
lean_client.py) in --processes other processes; the same events go to each server in turn:
appended to the event log ours follows (one write each, as the watcher logs a lone change), or
sent by a publisher over a WebSocket to the others. With --ours-processes N, ours is
`desks broadcaster --processes N` (N processes on one port, SO_REUSEPORT), measured whole.
Reported per server and K: deliveries per second (flood: K x events over the time from the
first send to the last receipt), publish-to-receipt latency (p50/p99/max, over every event of
one connection in --sample-every), the server's CPU microseconds per delivery, its resident
memory per idle connection, and the clients' CPU (they must not be the limit).
Results: bench/results/fanout-<mode>-<K...>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from bench import baselines, cclient, lean_client
from bench.common import (
    RESULTS,
    cpu_seconds,
    free_port,
    percentiles,
    process_tree,
    record,
    rss_bytes,
)
from desks.event_log import EventLog
from desks.events import DeskCreated, decode
from embedded import EmbeddedClient

SERVERS = ("ours", "broadcast", "sequential")
CONTEXT = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads


def event(seq: int) -> str:
    desk = {"id": f"{seq:024x}", "name": f"Mesa {seq}", "width": 180, "height": 90, "version": 1}
    at = "2026-11-28T14:30:45.000Z"
    return DeskCreated(seq=seq, at=at, desk_id=desk["id"], version=1, desk=desk).encode()


class LogFeed:
    """Feeds our broadcaster as the watcher does: each event appended to the log it follows."""

    def __init__(self, path: str) -> None:
        self.store = EmbeddedClient(path, synchronous="NORMAL")
        self.events = EventLog(self.store["desks"])
        self.events.epoch()

    def send(self, message: str) -> None:
        logged = decode(json.loads(message))
        self.events.append(logged, f"t{logged.seq}")


class Processes:
    """`desks broadcaster --processes N` on a free port, following the log in `path`."""

    def __init__(self, path: str, count: int) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "DESKS_EMBEDDED_PATH": path,
            "DESKS_EMBEDDED_SYNCHRONOUS": "NORMAL",
            "DESKS_HISTORY_SIZE": "100000",
            "DESKS_LOG_LEVEL": "WARNING",
            # Every benchmark client comes from 127.0.0.1: no per-address cap.
            "DESKS_MAX_CONNECTIONS": "1000000",
            "DESKS_MAX_CONNECTIONS_PER_ADDRESS": "1000000",
        }
        env.pop("MONGODB_URI", None)
        command = [sys.executable, "-m", "launcher.cli", "broadcaster", "--port", str(self.port)]
        self.process = subprocess.Popen([*command, "--processes", str(count)], env=env)
        deadline = time.monotonic() + 60
        while len(self.pids()) < count + 1 or not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the broadcaster processes did not start")
            time.sleep(0.1)
        time.sleep(1.0)  # every process listening and following, not just the first

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def pids(self) -> list[int]:
        """Return the parent's pid and its children's."""
        return process_tree(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def measure(kind: str, clients: int, events: int, rate: float | None, args: Any) -> dict[str, Any]:
    """Run one server with `clients` connections; publish `events` (at `rate`/s, or flat out)."""
    with tempfile.TemporaryDirectory(prefix="desks-fanout-") as directory:
        path = f"{directory}/store.sqlite3"
        feed = LogFeed(path) if kind == "ours" else None
        if kind == "ours" and args.ours_processes > 1:
            processes = Processes(path, args.ours_processes)
            try:
                assert feed is not None
                return _publish(kind, processes, feed, clients, events, rate, args, processes.port)
            finally:
                processes.stop()
                feed.store.close()
        ports, stop = CONTEXT.Queue(), CONTEXT.Event()
        server = CONTEXT.Process(target=baselines.serve_forever, args=(kind, ports, stop, path))
        server.start()
        port = ports.get(timeout=60)
        try:
            if feed is not None:
                return _publish(kind, server, feed, clients, events, rate, args, port)
            with connect(f"ws://127.0.0.1:{port}/publish") as publisher:
                return _publish(kind, server, publisher, clients, events, rate, args, port)
        finally:
            stop.set()
            server.join(30)
            if feed is not None:
                feed.store.close()


def _publish(
    kind: str,
    server: Any,
    publisher: Any,
    clients: int,
    events: int,
    rate: float | None,
    args: Any,
    port: int,
) -> dict[str, Any]:
    pids = server.pids() if isinstance(server, Processes) else [server.pid]
    time.sleep(0.5)
    rss_before = sum(rss_bytes(pid) for pid in pids)
    sent = CONTEXT.Array("d", events + 1, lock=False)
    lean: Any
    if args.client == "c":
        lean = cclient.CClients(
            port, clients, events, args.processes, args.sample_every, pause_us=args.client_pause_us
        )
    else:
        lean = lean_client.Clients(port, clients, events, args.processes, args.sample_every, sent)
    connected = lean.connect()
    time.sleep(1.0)  # settle: the idle cost of every connection
    idle = (sum(rss_bytes(pid) for pid in pids) - rss_before) / connected
    messages = [event(seq) for seq in range(1, events + 1)]
    cpu_before = sum(cpu_seconds(pid) for pid in pids)
    lean.go()
    time.sleep(0.2)  # the clients leave their wait
    start = time.monotonic()
    for seq, message in enumerate(messages, 1):
        if rate is not None:
            delay = start + (seq - 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sent[seq] = time.monotonic()
        publisher.send(message)
    reports = lean.finish(sent) if args.client == "c" else lean.finish()
    cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
    delivered = sum(report["frames"] for report in reports)
    last = max(report["last"] for report in reports)
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    return {
        "server": kind if len(pids) == 1 else f"{kind} x{len(pids) - 1} processes",
        "clients": connected,
        "events": events,
        "rate": rate,
        "delivered": delivered,
        "expected": connected * events,
        "deliveries_per_s": round(delivered / (last - start)) if last > start else None,
        "latency_ms": percentiles(latencies),
        "server_cpu_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else None,
        "server_cpu_s": round(cpu, 2),
        "client_cpu_s": round(sum(report["cpu_s"] for report in reports), 2),
        "wall_s": round(last - start, 2),
        "idle_rss_per_connection_bytes": round(idle),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    parser.add_argument("--mode", choices=("flood", "paced"), default="flood")
    parser.add_argument("--clients", default="100,1000,5000", help="K values, comma-separated")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--events", type=int, default=200, help="flood: events to send")
    parser.add_argument("--rate", type=float, default=50, help="paced: events per second")
    parser.add_argument("--seconds", type=float, default=10, help="paced: how long")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument(
        "--ours-processes", type=int, default=1, help="broadcaster processes on one port"
    )
    parser.add_argument(
        "--client",
        choices=("python", "c"),
        default="python",
        help="lean clients in Python, or in C (bench/lean_client.c: a fraction of the CPU)",
    )
    parser.add_argument(
        "--client-pause-us",
        type=int,
        default=0,
        help="C clients sleep this long after each round of reads, so that one read takes many "
        "frames (a flood: clients far cheaper than the server; latencies late by up to this)",
    )
    parser.add_argument("--sample-every", type=int, default=10, help="time 1 connection in N")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    runs = []
    for clients in [int(k) for k in args.clients.split(",")]:
        for kind in args.servers.split(","):
            if args.mode == "flood":
                run = measure(kind, clients, args.events, None, args)
            else:
                run = measure(kind, clients, round(args.rate * args.seconds), args.rate, args)
            print(json.dumps(run), flush=True)
            runs.append(run)
    record(
        "fanout",
        f"fanout-{args.mode}-{args.clients.replace(',', '-')}",
        {"parameters": {**vars(args), "results": None}, "runs": runs, "ratios": ratios(runs)},
        args.results,
    )


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, per K, ours against each baseline: deliveries/s and p99 latency."""
    found: dict[str, dict[str, float]] = {}
    for clients in sorted({run["clients"] for run in runs}):
        by_server = {run["server"]: run for run in runs if run["clients"] == clients}
        ours = by_server.get("ours")
        if ours is None:
            continue
        for other in ("broadcast", "sequential"):
            if other in by_server and by_server[other]["deliveries_per_s"]:
                found.setdefault(str(clients), {})[f"deliveries_vs_{other}"] = round(
                    (ours["deliveries_per_s"] or 0) / by_server[other]["deliveries_per_s"], 2
                )
    return found


if __name__ == "__main__":
    main()
