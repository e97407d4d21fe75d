"""The servers our broadcaster is measured against, with the same routes and messages.

- `broadcast`: a plain `websockets` server calling broadcast() for each event, with no history,
  limits or checks: the ceiling of the library for our design.
- `sequential`: one `await send()` per client in turn, as the seed system's server did.
- `ours`: the desks broadcaster itself, following an event log the benchmark appends to (as
  the watcher does); the others get the same events from a publisher over a WebSocket.

Each runs alone in its process (`serve`), so its CPU time can be read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from broadcaster.limits import Limits
from broadcaster.server import Broadcaster
from desks.event_log import EventLog
from embedded import EmbeddedClient

HELLO = json.dumps({"type": "hello", "head": 0, "epoch": "bench"})


def serve_forever(kind: str, ports: Any, stop: Any, store: str | None = None) -> None:
    """Run the server `kind` on a free port, put the port on `ports`, until `stop` is set;
    ours follows the log in the embedded store file `store`."""
    if kind == "ours":
        assert store is not None
        # Every benchmark client comes from 127.0.0.1: no per-address cap (as behind a proxy).
        limits = Limits(max_connections=1_000_000, max_per_address=1_000_000)
        events = EventLog(EmbeddedClient(store, synchronous="NORMAL")["desks"])
        server = Broadcaster(events, retain=100_000, limits=limits)
        running = threading.Event()
        thread = threading.Thread(target=server.run, args=("127.0.0.1", 0, running), daemon=True)
        thread.start()
        server.listening.wait(30)
        ports.put(server.port)
        stop.wait()
        running.set()
        thread.join(10)
        return
    asyncio.run(_baseline(kind, ports, stop))


async def _baseline(kind: str, ports: Any, stop: Any) -> None:
    clients: set[ServerConnection] = set()

    async def publish(message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        if kind == "broadcast":
            broadcast(clients, text)
            return
        for client in list(clients):  # one at a time: a slow client holds up the rest
            try:
                await client.send(text)
            except ConnectionClosed:
                clients.discard(client)

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        if connection.request.path.startswith("/publish"):
            async for message in connection:
                await publish(message)
            return
        await connection.send(HELLO)
        clients.add(connection)
        try:
            await connection.wait_closed()
        finally:
            clients.discard(connection)

    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None) as server:
        ports.put(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
