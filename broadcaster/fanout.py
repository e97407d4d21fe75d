"""Fan-out to clients with websockets' broadcast(), dropping any client that falls behind."""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection, broadcast

from broadcaster import metrics
from broadcaster.peer import GuardedConnection, close_soon

log = logging.getLogger("desks.broadcaster")

TRY_AGAIN_LATER = 1013


class Fanout:
    """The live clients, each allowed at most `max_buffer` bytes of unsent messages."""

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.clients: set[ServerConnection] = set()
        self._full: list[ServerConnection] = []  # went over max_buffer; dropped at the next send
        self._watched: set[ServerConnection] = set()  # paused before joining: checked per send

    def __len__(self) -> int:
        return len(self.clients)

    def add(self, connection: ServerConnection) -> None:
        """Start sending live messages to `connection`."""
        # broadcast() applies no backpressure: a client that stopped reading would make the
        # server buffer without bound. Instead of measuring every client's buffer on every
        # event, let asyncio say when one goes over the limit: it calls the protocol's
        # pause_writing() the moment a write takes the unsent bytes past the high-water mark.
        transport = connection.transport
        if transport is not None:
            transport.set_write_buffer_limits(high=self.max_buffer)
        if isinstance(connection, GuardedConnection):
            connection.on_full = self._went_full
            # Paused already (by its replay, at the lower limit): asyncio will not call
            # pause_writing() again until it has resumed, so measure it until then.
            if connection.paused:
                self._watched.add(connection)
        else:
            self._watched.add(connection)  # no hook: measured on every send
        self.clients.add(connection)

    def discard(self, connection: ServerConnection) -> None:
        """Stop sending to `connection`."""
        self.clients.discard(connection)
        self._watched.discard(connection)

    def send(self, message: str) -> int:
        """Send `message` to every client keeping up; return how many it went to."""
        self._drop_full()
        broadcast(self.clients, message)
        self._drop_full()  # cut loose now, not one event later; it can resume with after=<seq>
        return len(self.clients)

    def _went_full(self, connection: ServerConnection) -> None:
        if connection in self.clients:
            self._full.append(connection)  # not dropped here: broadcast() may be iterating

    def _drop_full(self) -> None:
        if self._watched:
            for connection in list(self._watched):
                if _buffered(connection) > self.max_buffer:
                    self._full.append(connection)
                elif isinstance(connection, GuardedConnection) and not connection.paused:
                    self._watched.discard(connection)  # resumed: pause_writing() reports it
        while self._full:
            connection = self._full.pop()
            if connection in self.clients:
                self.drop_slow(connection)

    def drop_slow(self, connection: ServerConnection) -> None:
        """Close a client that has more than `max_buffer` bytes waiting, with code 1013."""
        self.discard(connection)
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
