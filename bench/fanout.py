"""Fan-out side by side: our broadcaster, plain broadcast(), and one send() per client in turn.

    python -m bench.fanout --mode flood --clients 100,1000,5000 --events 200
    python -m bench.fanout --mode paced --clients 1000 --rate 50 --seconds 10

Each server runs alone in a process; K connections are held by lean clients (bench/
lean_client.py) in --processes other processes; one publisher sends the same events to each
server in turn. Reported per server and K: deliveries per second (flood: K x events over the
time from the first send to the last receipt), publish-to-receipt latency (p50/p99/max, over
every event of one connection in --sample-every), the server's CPU microseconds per delivery,
its resident memory per idle connection, and the clients' CPU (they must not be the limit).
Results: bench/results/fanout-<mode>-<K...>.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from bench import baselines, lean_client
from bench.common import RESULTS, cpu_seconds, percentiles, record, rss_bytes
from desks.events import DeskCreated

SERVERS = ("ours", "broadcast", "sequential")
CONTEXT = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited threads


def event(seq: int) -> str:
    desk = {"id": f"{seq:024x}", "name": f"Mesa {seq}", "width": 180, "height": 90, "version": 1}
    at = "2026-11-28T14:30:45.000Z"
    return DeskCreated(seq=seq, at=at, desk_id=desk["id"], version=1, desk=desk).encode()


def measure(kind: str, clients: int, events: int, rate: float | None, args: Any) -> dict[str, Any]:
    """Run one server with `clients` connections; publish `events` (at `rate`/s, or flat out)."""
    ports, stop = CONTEXT.Queue(), CONTEXT.Event()
    server = CONTEXT.Process(target=baselines.serve_forever, args=(kind, ports, stop))
    server.start()
    port = ports.get(timeout=60)
    headers = {"Authorization": f"Bearer {baselines.TOKEN}"}
    with connect(f"ws://127.0.0.1:{port}/publish", additional_headers=headers) as publisher:
        try:
            return _publish(kind, server, publisher, clients, events, rate, args, port)
        finally:
            stop.set()
            server.join(30)


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
    if kind == "ours":
        publisher.recv(timeout=10)  # ready
        publisher.send(json.dumps({"type": "log", "epoch": "bench", "after": 0}))
    time.sleep(0.5)
    rss_before = rss_bytes(server.pid)  # type: ignore[arg-type]
    sent = CONTEXT.Array("d", events + 1, lock=False)
    lean = lean_client.Clients(port, clients, events, args.processes, args.sample_every, sent)
    connected = lean.connect()
    time.sleep(1.0)  # settle: the idle cost of every connection
    idle = (rss_bytes(server.pid) - rss_before) / connected  # type: ignore[arg-type]
    messages = [event(seq) for seq in range(1, events + 1)]
    cpu_before = cpu_seconds(server.pid)  # type: ignore[arg-type]
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
    reports = lean.finish()
    cpu = cpu_seconds(server.pid) - cpu_before  # type: ignore[arg-type]
    delivered = sum(report["frames"] for report in reports)
    last = max(report["last"] for report in reports)
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    return {
        "server": kind,
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
