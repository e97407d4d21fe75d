"""What one event costs the broadcaster's loop to fan out, ours against plain broadcast().

    python -m bench.fanout_cost --clients 5000 --events 600 --rate 20

One server process holds K connections (lean clients in other processes read them) and sends
each event with one of the variants in turn, on the same connections: plain `broadcast()`,
ours (`Fanout.send`: the slow-client guard, then one frame serialized for every client), and,
with --measure-all, the guard as it was before 2026-12-05 (every client's buffer measured
before every event, then `broadcast()`). For each variant: the server thread's CPU time and
wall time per event (the wall time of the call is how long the last client waits behind the
first), per delivery, p50/p99. Run-to-run noise from clients and the scheduler, which moves a
flood's deliveries/s by 10-20% on 2 cores, is shared by the variants here, event by event.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench import lean_client
from bench.common import RESULTS, percentiles, record
from bench.fanout import event
from broadcaster.fanout import Fanout, _buffered
from broadcaster.peer import GuardedConnection

CONTEXT = multiprocessing.get_context("spawn")
MAX_BUFFER = 1024 * 1024
HELLO = '{"type": "hello", "head": 0, "epoch": "bench"}'


def _measure_all(fanout: Fanout, message: str) -> int:
    """The guard before 2026-12-05: every client's buffer measured on every event."""
    for connection in [c for c in fanout.clients if _buffered(c) > fanout.max_buffer]:
        fanout.drop_slow(connection)
    broadcast(fanout.clients, message)
    return len(fanout.clients)


def _plain(fanout: Fanout, message: str) -> int:
    broadcast(fanout.clients, message)
    return len(fanout.clients)


VARIANTS = {"broadcast": _plain, "ours": Fanout.send, "measure_all": _measure_all}


async def _serve(args: Any, ports: Any, connected: Any, results: Any) -> None:
    fanout = Fanout(MAX_BUFFER)
    everyone = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        await connection.send(HELLO)  # the lean clients count from the first frame after it
        fanout.add(connection)
        if len(fanout) >= args.clients:
            everyone.set()
        await connection.wait_closed()
        fanout.discard(connection)

    async with serve(
        handler, "127.0.0.1", 0, create_connection=GuardedConnection, compression=None
    ) as server:
        ports.put(next(iter(server.sockets)).getsockname()[1])
        await everyone.wait()
        connected.wait()  # the clients are counting
        names = list(args.variants)
        costs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
        for seq in range(1, args.events + 1):
            name = names[seq % len(names)]
            message = event(seq)
            wall, cpu = time.perf_counter(), time.thread_time()
            VARIANTS[name](fanout, message)
            costs[name].append((time.thread_time() - cpu, time.perf_counter() - wall))
            await asyncio.sleep(1 / args.rate)  # the clients drain: every variant sends idle
        await asyncio.sleep(1)
        results.put({"clients": len(fanout), "costs": costs})


def _server(args: Any, ports: Any, connected: Any, results: Any) -> None:
    asyncio.run(_serve(args, ports, connected, results))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout_cost")
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--events", type=int, default=600)
    parser.add_argument("--rate", type=float, default=20, help="events per second")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--measure-all", action="store_true", help="also the guard before")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    args.results = Path(args.results)
    args.variants = ["broadcast", "ours"] + (["measure_all"] if args.measure_all else [])
    ports, connected, results = CONTEXT.Queue(), CONTEXT.Event(), CONTEXT.Queue()
    server = CONTEXT.Process(target=_server, args=(args, ports, connected, results))
    server.start()
    clients = lean_client.Clients(ports.get(timeout=60), args.clients, args.events, args.processes)
    clients.connect()
    clients.go()
    time.sleep(0.2)
    connected.set()
    outcome = results.get(timeout=600)
    reports = clients.finish()
    server.join(30)
    delivered = sum(report["frames"] for report in reports)
    figures: dict[str, Any] = {}
    for name, costs in outcome["costs"].items():
        cpu = [c * 1e3 for c, _ in costs]
        wall = [w * 1e3 for _, w in costs]
        figures[name] = {
            "cpu_ms_per_event": percentiles(cpu),
            "wall_ms_per_event": percentiles(wall),
            "cpu_us_per_delivery": round(sum(cpu) / len(cpu) / outcome["clients"] * 1e3, 3),
        }
    base = figures["broadcast"]["cpu_us_per_delivery"]
    for name in figures:
        figures[name]["cpu_vs_broadcast"] = round(figures[name]["cpu_us_per_delivery"] / base, 3)
    run = {
        "clients": outcome["clients"],
        "events": args.events,
        "delivered": delivered,
        "expected": outcome["clients"] * args.events,
        "variants": figures,
    }
    record("fanout_cost", f"fanout-cost-{args.clients}", run, args.results)


if __name__ == "__main__":
    main()
