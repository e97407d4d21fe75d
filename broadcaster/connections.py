"""Every connection a server makes, and the order of cuts that stops it without leaking one."""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from websockets.asyncio.server import Server, ServerConnection
from websockets.protocol import State

from broadcaster.peer import GuardedConnection, cut

log = logging.getLogger("desks.broadcaster")


class Connections:
    """The connections a server made, each known before its first byte so that stopping can
    cut it."""

    def __init__(self) -> None:
        self._made: weakref.WeakSet[ServerConnection] = weakref.WeakSet()

    def new(self, *args: Any, **kwargs: Any) -> GuardedConnection:
        """Make a connection (websockets' `create_connection`) and remember it."""
        connection = GuardedConnection(*args, **kwargs)
        self._made.add(connection)
        return connection

    def made(self) -> list[ServerConnection]:
        """Return the connections that have their transport (a loop turn after they are made)."""
        return [each for each in self._made if hasattr(each, "transport")]

    async def stop_accepting(self, server: Server) -> None:
        """Stop taking connections and cut those still opening, before the server closes.

        asyncio (3.11) drops unclosed the transport of an accept that runs after its server
        closed (the peer waits until a collector finds it), and websockets' close waits out
        each handshake under way (its open timeout, 10 s). So the listening sockets stop being
        read first, each accept in flight gets the two loop turns it takes to make its
        connection, and every connection still waiting for its peer's request is cut.
        """
        loop = asyncio.get_running_loop()
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
        await asyncio.sleep(0)  # an accept in flight makes its transport...
        await asyncio.sleep(0)  # ...and the transport its connection
        for connection in self.made():
            # One whose request came is answered by the server's close (503), not cut.
            if connection.state is State.CONNECTING and connection.request is None:
                cut(connection)

    async def cut_the_rest(self) -> None:
        """Cut every connection still here, so that none outlives this loop with its socket.

        A peer that stopped reading keeps its socket open after the server's close while
        unsent data waits. Each abort closes its socket in a callback, which the loop must
        run before it ends (one turn).
        """
        for connection in self.made():
            cut(connection)
        await asyncio.sleep(0)


async def close(server: Server, budget: float) -> None:
    """Close the server, giving clients' closing handshakes at most `budget` seconds."""
    server.close()
    try:
        # Shielded: at the deadline only the wait ends; the cut that follows ends the close.
        await asyncio.wait_for(asyncio.shield(server.wait_closed()), budget)
    except TimeoutError:
        log.warning("clients did not close in time; cut", extra={"budget_s": budget})
