"""What one WebSocket peer may cost: every frame it sends is counted, a close is bounded, and
what its handshake said is not kept."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame
from websockets.protocol import Event, State

log = logging.getLogger("desks.broadcaster")

POLICY_VIOLATION = 1008
# What a flooding peer may still send while it is being closed: a close frame is at most 131.
AFTER_FLOOD_BYTES = 4096


class Allowance:
    """A token bucket: `burst` frames at once, then `rate` frames a second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()

    def take(self) -> bool:
        """Spend one token; False when none is left."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class GuardedConnection(ServerConnection):
    """A server connection that counts every frame its peer sends, control frames included.

    websockets answers each ping with a pong on its own, before any handler sees it: a peer
    that floods pings and never reads would make the server queue pongs without bound. Once
    `allowance` is spent the connection is closed with 1008; while the closing handshake runs
    (bounded by `close_timeout`), the peer may send at most `AFTER_FLOOD_BYTES` more, enough
    for its close frame, before the connection is cut.
    """

    allowance: Allowance | None = None  # set for clients once routed; the publisher is trusted
    _budget: int | None = None  # bytes the peer may still send, once it has flooded
    # Told when unsent bytes go over the transport's high-water mark (set by the fan-out).
    on_full: Callable[[ServerConnection], None] | None = None

    def pause_writing(self) -> None:
        """Pause sends as websockets does, and tell `on_full` that the buffer is full."""
        super().pause_writing()
        if self.on_full is not None:
            self.on_full(self)

    def data_received(self, data: bytes) -> None:
        """Feed the peer's bytes to the protocol, unless a flooding peer is over budget."""
        if self._budget is not None:
            self._budget -= len(data)
            if self._budget < 0:
                cut(self)
                return
        super().data_received(data)

    def process_event(self, event: Event) -> None:
        """Count a frame against the allowance before websockets handles it."""
        if self.allowance is not None and isinstance(event, Frame) and not self.allowance.take():
            self.allowance = None  # act once
            self._budget = AFTER_FLOOD_BYTES
            log.warning("client flooding; closed", extra={"remote": remote(self)})
            close_soon(self, POLICY_VIOLATION, "too many messages; clients only listen")
            return
        super().process_event(event)


_closing: set[asyncio.Task[None]] = set()  # strong references until each close finishes


def close_soon(connection: ServerConnection, code: int, reason: str) -> None:
    """Close `connection` in the background, bounded by its close timeout."""
    task = asyncio.get_running_loop().create_task(close_within(connection, code, reason))
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def close_within(connection: ServerConnection, code: int, reason: str) -> None:
    """Start the closing handshake; cut the connection if it is not done in `close_timeout`.

    websockets' close() first waits for unsent data to drain, and its close timeout only
    starts after that: a peer that stopped reading would keep its socket and buffer forever.
    """
    try:
        await asyncio.wait_for(connection.close(code, reason), connection.close_timeout)
    except TimeoutError:
        pass
    finally:
        if connection.state is not State.CLOSED:
            cut(connection)


def cut(connection: ServerConnection) -> None:
    """Reset the connection now, freeing its buffers in this process and in the kernel.

    A plain close would leave the kernel holding unsent data for a peer that does not read,
    in FIN_WAIT1, for minutes; a zero linger makes close() send RST and drop it.
    """
    sock = connection.transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.transport.abort()


def forget_handshake(connection: ServerConnection) -> None:
    """Let go of the handshake's headers once read (the gate's checks, the query): an idle
    client would hold them for as long as it stays (measured: a fifth of its memory)."""
    # Emptied in place: websockets' parser keeps the request for the connection's life.
    for message in (connection.request, connection.response):
        if message is not None:
            message.headers.clear()


def remote(connection: ServerConnection) -> str:
    """Return the peer's address as host:port."""
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
