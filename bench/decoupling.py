"""Decoupling: a POST costs the same with 0 and with 1,000 connected dashboards.

    python -m bench.decoupling --dashboards 1000 --posts 300 --rounds 2 --rate 50

`desks up` runs on a fresh store file; the phases alternate (0, K, 0, K, ...) so that drift
in the machine's state spreads over both. In a K phase, K lean clients (bench/lean_client.py)
hold connections and receive every event of the phase. One client POSTs on a keep-alive
connection, --rate a second (0: back to back, which also measures the fan-out's CPU taking
the API's share of the cores); p50/p99 per dashboard count, and their ratio.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import lean_client
from bench.common import RESULTS, free_port, percentiles, process_tree, record, run_queue_wait_s
from bench.store import Up, request


def phase(
    up: Up, dashboards: int, posts: int, processes: int, rate: float
) -> tuple[list[float], float]:
    """POST `posts` desks with `dashboards` connected; return each POST's milliseconds, and
    the milliseconds per POST the API's processes waited for a CPU meanwhile."""
    ws_port = int(up.ws.rsplit(":", 1)[1].strip("/"))
    clients = lean_client.Clients(ws_port, dashboards, posts, processes) if dashboards else None
    if clients is not None:
        clients.connect()
        clients.go()
        time.sleep(1.0)
    connection = http.client.HTTPConnection("127.0.0.1", up.port, timeout=30)
    samples = []
    api = process_tree(up.process.pid)[1:]  # `desks api` and its gunicorn workers
    waited = run_queue_wait_s(api)
    start = time.monotonic()
    for n in range(posts):
        if rate:
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
        body = {"name": f"Desk {n}", "width": 100, "height": 50}
        started = time.perf_counter()
        status, _, _ = request(connection, "POST", "/api/desks", body)
        samples.append((time.perf_counter() - started) * 1000)
        assert status == 201
    connection.close()
    waited = run_queue_wait_s(api) - waited
    if clients is not None:
        delivered = sum(report["frames"] for report in clients.finish(timeout=120))
        assert delivered == dashboards * posts, (delivered, dashboards * posts)
    return samples, waited * 1000 / posts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decoupling")
    parser.add_argument("--dashboards", type=int, default=1000)
    parser.add_argument("--posts", type=int, default=300, help="POSTs per phase")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases (0, K)")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--rate", type=float, default=50, help="POSTs a second (0: flat out)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    by_count: dict[int, list[float]] = {0: [], args.dashboards: []}
    waits: dict[int, list[float]] = {0: [], args.dashboards: []}
    with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
        up = Up(str(Path(directory) / "store.sqlite3"), free_port(), free_port())
        try:
            phase(up, 0, 50, args.processes, args.rate)  # warm-up, not measured
            for _ in range(args.rounds):
                for dashboards in (0, args.dashboards):
                    posts, waited = phase(up, dashboards, args.posts, args.processes, args.rate)
                    by_count[dashboards] += posts
                    waits[dashboards].append(waited)
        finally:
            up.close()
    alone, watched = percentiles(by_count[0]), percentiles(by_count[args.dashboards])
    figures: dict[str, Any] = {
        "parameters": {k: v for k, v in vars(args).items() if k != "results"},
        "post_ms_with_0": alone,
        f"post_ms_with_{args.dashboards}": watched,
        "p50_ratio": round(watched["p50"] / alone["p50"], 2),
        "p99_ratio": round(watched["p99"] / alone["p99"], 2),
        # Where an increase comes from: the API's processes waiting for one of the cores.
        "api_cpu_wait_ms_per_post": {
            str(count): round(sum(values) / len(values), 3) for count, values in waits.items()
        },
    }
    name = f"decoupling-{args.dashboards}-{args.posts}-{args.rate:g}"
    record("decoupling", name, figures, args.results)


if __name__ == "__main__":
    main()
