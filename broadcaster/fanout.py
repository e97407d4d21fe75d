"""Fan-out to clients, one frame serialized once for all of them, dropping any that falls behind."""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from broadcaster import metrics
from broadcaster.peer import GuardedConnection, close_soon, cut, remote

log = logging.getLogger("desks.broadcaster")

TRY_AGAIN_LATER = 1013


class Fanout:
    """The live clients, each allowed at most `max_buffer` bytes of unsent messages."""

    def __init__(self, max_buffer: int) -> None:
        self.max_buffer = max_buffer
        self.clients: set[ServerConnection] = set()
        # Clients whose transport is paused (over max_buffer when it paused): measured before
        # each send until they resume. The rest cost nothing more than their write.
        self._watched: set[ServerConnection] = set()

    def __len__(self) -> int:
        return len(self.clients)

    def add(self, connection: ServerConnection) -> None:
        """Start sending live messages to `connection`."""
        if connection.protocol.extensions:
            # Every client gets the same bytes: a frame an extension (compression) would
            # transform is not the one serialized for the rest. The broadcaster offers none.
            raise ValueError("the fan-out sends plain frames: no extension may be negotiated")
        # Writing applies no backpressure: a client that stopped reading would make the
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
        # A client is dropped when it is still over the limit when the next event comes, not
        # the moment one write crossed it: one event larger than the limit is no offence.
        for connection in [c for c in self._watched if _buffered(c) > self.max_buffer]:
            self.drop_slow(connection)
        for connection in [c for c in self._watched if not _paused(c)]:
            self._watched.discard(connection)  # resumed: pause_writing() will report it
        # broadcast() builds and serializes a frame per client (a quarter of its cost per
        # delivery, measured); with no extension the frame is the same bytes for every client,
        # so it is serialized once, as gorilla/websocket's PreparedMessage does and as
        # websockets' author suggests (python-websockets/websockets#931).
        frame = Frame(Opcode.TEXT, message.encode()).serialize(mask=False)
        skipped = 0
        failed: list[tuple[ServerConnection, Exception]] = []
        for connection in self.clients:
            # As broadcast(): skip a connection that is closing. No fragmented send can be in
            # progress: the broadcaster sends each message whole.
            if connection.protocol.state is not State.OPEN:
                skipped += 1
                continue
            try:
                connection.transport.write(frame)
            except Exception as refused:  # one failed write stops no other
                failed.append((connection, refused))
        sent = len(self.clients) - skipped - len(failed)
        for connection, error in failed:
            # It missed this event: cut it rather than send it the next ones after a gap; it
            # reconnects and resumes after the last event it got.
            self.discard(connection)
            log.warning(
                "client cut: write failed",
                extra={"remote": remote(connection), "error": repr(error)},
            )
            cut(connection)
        return sent

    def _went_full(self, connection: ServerConnection) -> None:
        # Called inside a write, maybe inside the loop of send(): only note it.
        if connection in self.clients and connection.protocol.state is State.OPEN:
            self._watched.add(connection)

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


def _paused(connection: ServerConnection) -> bool:
    # Without the hook (not a GuardedConnection) only measuring can tell: keep watching.
    return not isinstance(connection, GuardedConnection) or connection.paused


def _buffered(connection: ServerConnection) -> int:
    transport = connection.transport
    return 0 if transport is None or transport.is_closing() else transport.get_write_buffer_size()
