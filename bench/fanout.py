"""Broadcaster fan-out: one publisher, many clients in another process; deliveries per second.

Run: .venv/bin/python -m bench.fanout [--clients 200] [--events 2000]
The clients run in a child process so that they do not share the broadcaster's CPU time
slices in one interpreter; both still share this machine's 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import resource
import threading
import time

from websockets.asyncio.client import connect
from websockets.sync.client import connect as sync_connect

from broadcaster.server import Broadcaster
from desks.events import DeskCreated

TOKEN = "bench"


def event(seq: int) -> str:
    desk = {"id": f"{seq:024x}", "name": f"Mesa {seq}", "width": 180, "height": 90, "version": 1}
    return DeskCreated(
        seq=seq, at="2026-11-28T14:30:45.000Z", desk_id=desk["id"], version=1, desk=desk
    ).encode()


def clients(port: int, count: int, events: int, ready: object, done: object) -> None:
    async def one() -> None:
        async with connect(f"ws://127.0.0.1:{port}/", max_queue=None) as ws:
            await ws.recv()  # hello
            ready.put(1)  # type: ignore[attr-defined]
            for _ in range(events):
                await ws.recv()

    async def all_of_them() -> None:
        await asyncio.gather(*(one() for _ in range(count)))
        done.put(time.time())  # type: ignore[attr-defined]

    asyncio.run(all_of_them())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()

    broadcaster = Broadcaster(TOKEN, retain=args.events)
    stop = threading.Event()
    threading.Thread(target=broadcaster.run, args=("127.0.0.1", 0, stop), daemon=True).start()
    broadcaster.listening.wait(10)
    assert broadcaster.port is not None
    with sync_connect(
        f"ws://127.0.0.1:{broadcaster.port}/publish",
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
    ) as publisher:
        publisher.recv(timeout=5)
        publisher.send(json.dumps({"type": "log", "epoch": "bench", "after": 0}))
        ready: multiprocessing.Queue[int] = multiprocessing.Queue()
        done: multiprocessing.Queue[float] = multiprocessing.Queue()
        child = multiprocessing.Process(
            target=clients, args=(broadcaster.port, args.clients, args.events, ready, done)
        )
        child.start()
        for _ in range(args.clients):
            ready.get(timeout=60)
        started = time.time()
        for seq in range(1, args.events + 1):
            publisher.send(event(seq))
        finished = done.get(timeout=300)
        child.join(10)
    stop.set()
    elapsed = finished - started
    deliveries = args.clients * args.events
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"clients={args.clients} events={args.events} deliveries={deliveries} "
        f"seconds={elapsed:.2f} deliveries/s={deliveries / elapsed:.0f} "
        f"server_peak_rss={peak_mib:.0f}MiB"
    )


if __name__ == "__main__":
    main()
