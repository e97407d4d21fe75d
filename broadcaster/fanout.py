"""Fan-out to clients with websockets' broadcast(), dropping any client that falls behind."""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection, broadcast

from broadcaster import metrics
from broadcaster.peer import close_soon

log = logging.getLogger("desks.broadcaster")

TRY_AGAIN_LATER = 1013


class Fanout:
    """The live clients, each allowed at most `max_buffer` bytes of unsent messages."""

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.clients: set[ServerConnection] = set()

    def __len__(self) -> int:
        return len(self.clients)

    def add(self, connection: ServerConnection) -> None:
        """Start sending live messages to `connection`."""
        self.clients.add(connection)

    def discard(self, connection: ServerConnection) -> None:
        """Stop sending to `connection`."""
        self.clients.discard(connection)

    def send(self, message: str) -> int:
        """Send `message` to every client keeping up; return how many it went to."""
        # broadcast() applies no backpressure: a client that stopped reading would make the
        # server buffer without bound. Cut it loose instead; it can resume with after=<seq>.
        for connection in [c for c in self.clients if _buffered(c) > self.max_buffer]:
            self.drop_slow(connection)
        broadcast(self.clients, message)
        return len(self.clients)

    def drop_slow(self, connection: ServerConnection) -> None:
        """Close a client that has more than `max_buffer` bytes waiting, with code 1013."""
        self.clients.discard(connection)
        metrics.SLOW_DROPPED.inc()
        log.warning(
            "slow client dropped",
            extra={"buffered_bytes": _buffered(connection), "limit": self.max_buffer},
        )
        reason = "too slow: send buffer full; reconnect with after=<last seq>"
        close_soon(connection, TRY_AGAIN_LATER, reason)  # its socket and buffer freed in time


def _buffered(connection: ServerConnection) -> int:
    transport = connection.transport
    return 0 if transport is None or transport.is_closing() else transport.get_write_buffer_size()
