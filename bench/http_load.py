"""The API under many connections: latency, resets, retries without duplicates, idle clean-up.

    python -m bench.http_load --connections 500 --seconds 20 --rate 1

Runs `desks up` (gunicorn, default workers and threads) on a store file, then holds
`--connections` keep-alive connections from one asyncio client in this process, each sending
`--rate` requests a second (0: as fast as answers come): 80% GET of a desk, 20% POST with an
Idempotency-Key, retried once on a new connection if it fails. It reports requests/s,
latency percentiles, resets and time-outs, whether any retry made a duplicate desk, the
client's own CPU, then opens as many idle connections and counts how many the server closes.
Loopback only, bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from api.server import IDLE_TIMEOUT_S
from bench.common import RESULTS, free_port, percentiles, record
from bench.store import Up

REQUEST_TIMEOUT_S = 10.0
BODY = json.dumps({"name": "Mesa de carga", "width": 120, "height": 60})


class Failed(Exception):
    """A request got no complete answer."""


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request on a kept-alive connection; return (status, body)."""
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        (int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length")),
        0,
    )
    body = await reader.readexactly(length) if length else b""
    return status, body


def get(desk_id: str) -> bytes:
    return f"GET /api/desks/{desk_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post(key: str) -> bytes:
    return (
        "POST /api/desks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Idempotency-Key: {key}\r\nContent-Length: {len(BODY)}\r\n\r\n{BODY}"
    ).encode()


class Load:
    """What every connection saw."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.created: set[str] = set()  # desk ids POSTs were answered with
        self.keys: set[str] = set()


async def connection_loop(
    port: int, desk_id: str, rate: float, deadline: float, load: Load
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await asyncio.sleep(random.uniform(0, 1 / rate) if rate else 0)  # spread the starts
    while time.monotonic() < deadline:
        began = time.monotonic()
        key = str(uuid.uuid4()) if random.random() < 0.2 else None
        request = post(key) if key else get(desk_id)
        for attempt in range(2):
            try:
                status, body = await asyncio.wait_for(
                    exchange(reader, writer, request), REQUEST_TIMEOUT_S
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as error:
                load.errors[type(error).__name__] += 1
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                if key is None or attempt == 1:
                    break
                continue  # a POST that may have been committed: retry with its key
            load.latencies.append((time.monotonic() - began) * 1000)
            load.statuses[status] += 1
            if key and status == 201:
                load.keys.add(key)
                load.created.add(json.loads(body)["id"])
            break
        if rate:
            await asyncio.sleep(max(0.0, began + 1 / rate - time.monotonic()))
    writer.close()


async def idle_closed(port: int, count: int) -> int:
    """Open `count` connections that send nothing; return how many the server closed."""
    connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(count)]

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), 2 * IDLE_TIMEOUT_S + 5) == b""
        except (TimeoutError, OSError):
            return False

    results = await asyncio.gather(*(closed(reader) for reader, _ in connections))
    for _, writer in connections:
        writer.close()
    return sum(results)


async def run(port: int, args: argparse.Namespace) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, body = await exchange(reader, writer, post("seed"))
    writer.close()
    assert status == 201, body
    desk_id = json.loads(body)["id"]
    load = Load()
    cpu = time.process_time()
    started = time.monotonic()
    deadline = started + args.seconds
    await asyncio.gather(
        *(
            connection_loop(port, desk_id, args.rate, deadline, load)
            for _ in range(args.connections)
        )
    )
    elapsed = time.monotonic() - started
    client_cpu = time.process_time() - cpu
    closed = await idle_closed(port, args.connections)
    return {
        "requests_per_s": round(len(load.latencies) / elapsed, 1),
        "latency_ms": percentiles(load.latencies),
        "statuses": dict(load.statuses),
        "errors": dict(load.errors),
        "posts_acknowledged": len(load.keys),
        "duplicate_desks_from_retries": len(load.keys) - len(load.created),
        "client_cpu_share": round(client_cpu / elapsed, 2),
        "idle_connections_closed": f"{closed}/{args.connections}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.http_load")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=float, default=1.0, help="requests/s per connection")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
        up = Up(str(Path(directory) / "store.sqlite3"), free_port(), free_port())
        try:
            figures = asyncio.run(run(up.port, args))
            store_count = up_count(up.port)
        finally:
            up.close()
    parameters = {
        "connections": args.connections,
        "seconds": args.seconds,
        "rate_per_connection": args.rate,
    }
    figures = {"parameters": parameters, **figures, "desks_stored": store_count}
    record("http_load", f"http-load-{args.connections}-{args.rate:g}", figures, args.results)


def up_count(port: int) -> int:
    """Return how many desks the store holds (the seed included)."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/desks?page_size=1") as response:
        return int(json.loads(response.headers["X-Pagination"])["total"])


if __name__ == "__main__":
    main()
