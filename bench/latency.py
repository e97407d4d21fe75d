"""End-to-end latency: a REST write until a WebSocket client holds its event (embedded store).

Run: .venv/bin/python -m bench.latency [--writes 500] [--clients 10]
Prints p50/p95/p99/max in milliseconds and the sustained write -> event throughput.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request

from websockets.sync.client import connect

from desks.settings import Settings
from desks.store import open_store
from launcher.system import System


def post(url: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, object] = json.load(response)
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=500)
    parser.add_argument("--clients", type=int, default=10)
    args = parser.parse_args()

    settings = Settings(embedded_path=":memory:", api_port=0, broadcaster_port=0)
    system = System(settings, open_store(settings))
    system.start()
    sent: dict[int, float] = {}
    received: list[list[float]] = [[] for _ in range(args.clients)]
    ready = threading.Barrier(args.clients + 1)

    def listen(index: int) -> None:
        with connect(system.broadcaster_url, max_queue=None) as ws:
            json.loads(ws.recv(timeout=10))  # hello
            ready.wait()
            while len(received[index]) < args.writes:
                event = json.loads(ws.recv(timeout=30))
                received[index].append(time.perf_counter() - sent[event["seq"]])

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(args.clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for n in range(args.writes):
        # seq n+1 is this write's event: nothing else writes
        sent[n + 1] = time.perf_counter()
        post(f"{system.api_url}/api/desks", {"name": f"bench {n}", "width": 100, "height": 50})
    for thread in threads:
        thread.join(60)
    elapsed = time.perf_counter() - started
    system.stop()

    latencies = sorted(x * 1000 for client in received for x in client)
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"writes={args.writes} clients={args.clients} deliveries={len(latencies)} "
        f"p50={quantiles[49]:.2f}ms p95={quantiles[94]:.2f}ms p99={quantiles[98]:.2f}ms "
        f"max={latencies[-1]:.2f}ms writes/s={args.writes / elapsed:.0f}"
    )


if __name__ == "__main__":
    main()
