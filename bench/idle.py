"""Idle dashboards at scale: K connections over P broadcaster processes sharing one port.

    python -m bench.idle --clients 100000 --broadcasters 6 --client-processes 8 --seconds 30

`desks broadcaster --processes P` follows the event log on a store file; K lean clients in C
(bench/lean_client.c) in --client-processes processes connect and stay, each process from its
own loopback address (127.0.0.2, ...: one address has ~28,000 ephemeral ports towards one
server port, and a process may hold 20,000 open files here). Then one event a second is
appended to the log for --seconds. Reported: connections held, append-to-receipt latency
(p50/p99/max over every event of one connection in --sample-every), the broadcasters' memory
per connection (PSS: pages shared between them counted once; with K connections minus
before), and the CPU each side used while the events went out. Latency is given over every
event and, apart, over those after the first --warmup (the aftermath of K connections
arriving at once: see BENCHMARKS.md). With --client-pause-us the clients read in rounds, as
remote clients cost the server nothing to wake.
Results: bench/results/idle-<K>.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cclient
from bench.common import RESULTS, cpu_seconds, percentiles, pss_bytes, record
from bench.fanout import LogFeed, Processes, event


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run the broadcasters, hold the clients, send an event a second; return the figures."""
    events = round(args.seconds * args.rate)
    sent = [0.0] * (events + 1)  # when each seq was appended (time.monotonic())
    with tempfile.TemporaryDirectory(prefix="desks-idle-") as directory:
        path = f"{directory}/store.sqlite3"
        feed = LogFeed(path)
        processes = Processes(path, args.broadcasters)
        try:
            pids = processes.pids()
            before = pss_bytes(pids)
            sources = [f"127.0.0.{2 + n}" for n in range(args.client_processes)]
            clients = cclient.CClients(
                processes.port,
                args.clients,
                events,
                args.client_processes,
                args.sample_every,
                sources=sources,
                pause_us=args.client_pause_us,
            )
            started = time.monotonic()
            connected = clients.connect()
            connect_s = time.monotonic() - started
            time.sleep(2.0)  # settle: the idle cost of every connection
            held = pss_bytes(pids)
            cpu_before = sum(cpu_seconds(pid) for pid in pids)
            clients.go()
            time.sleep(0.5)
            start = time.monotonic()
            for seq in range(1, events + 1):
                delay = start + (seq - 1) / args.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                sent[seq] = time.monotonic()
                feed.send(event(seq))
            reports = clients.finish(sent, timeout=args.patience + args.seconds)
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        finally:
            processes.stop()
            feed.store.close()
    delivered = sum(report["frames"] for report in reports)
    latencies = [ms for report in reports for ms in report["latencies_ms"]]
    # The first events after the connections came meet their aftermath (the collector's
    # full passes over every new connection's objects, cold caches): shown apart as well.
    steady = [
        ms for report in reports for seq, ms in report["latencies_by_seq"] if seq > args.warmup
    ]
    return {
        "clients": connected,
        "broadcasters": args.broadcasters,
        "client_processes": args.client_processes,
        "events": events,
        "rate": args.rate,
        "delivered": delivered,
        "closed_by_server": sum(report["closed"] for report in reports),
        "expected": connected * events,
        "connect_s": round(connect_s, 1),
        "latency_ms": percentiles(latencies),
        "latency_after_warmup_ms": percentiles(steady),
        "pss_per_connection_bytes": round((held - before) / connected) if connected else None,
        "broadcasters_pss_bytes": held,
        "server_cpu_s": round(cpu, 2),
        "server_cpu_us_per_delivery": round(cpu / delivered * 1e6, 2) if delivered else None,
        "client_cpu_s": round(sum(report["cpu_s"] for report in reports), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.idle")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--broadcasters", type=int, default=6, help="processes on one port")
    parser.add_argument("--client-processes", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--sample-every", type=int, default=100, help="time 1 connection in N")
    parser.add_argument(
        "--client-pause-us",
        type=int,
        default=0,
        help="clients sleep this long after each round of reads (receipts late by up to it)",
    )
    parser.add_argument(
        "--warmup", type=int, default=2, help="events also left out of latency_after_warmup_ms"
    )
    parser.add_argument("--patience", type=float, default=60, help="seconds after the events")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    run = measure(args)
    print(json.dumps(run), flush=True)
    record(
        "idle",
        f"idle-{args.clients}",
        {"parameters": {**vars(args), "results": None}, "run": run},
        args.results,
    )


if __name__ == "__main__":
    main()
