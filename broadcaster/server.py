"""The broadcaster: one publisher feeds events in; every client on `/` gets them, in order.

Routes: `/` for dashboards and consoles (optionally `?after=<seq>&epoch=<epoch>`), `/publish`
for the watcher's publisher (bearer token), `/healthz` for probes. Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from broadcaster.history import History, SequenceGap
from desks.events import DeskEvent, EventFormatError, decode, hello, reset

log = logging.getLogger("desks.broadcaster")

POLICY_VIOLATION = 1008
MAX_MESSAGE_BYTES = 64 * 1024


class BadQuery(ValueError):
    """The client's query string cannot be honoured."""


def parse_query(path: str) -> tuple[int | None, str | None]:
    """Return (after, epoch) from a client's request path; raise BadQuery when malformed."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)
    unknown = set(query) - {"after", "epoch"}
    if unknown:
        raise BadQuery(f"unknown parameter {sorted(unknown)[0]!r}")
    if any(len(values) > 1 for values in query.values()):
        raise BadQuery("each parameter may be given once")
    after = None
    if "after" in query:
        raw = query["after"][0]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise BadQuery("after must be a non-negative integer")
        after = int(raw)
    epoch = query["epoch"][0] if "epoch" in query else None
    if epoch is not None and not (0 < len(epoch) <= 64 and epoch.isalnum()):
        raise BadQuery("epoch must be 1-64 letters or digits")
    return after, epoch


class Broadcaster:
    """Fan events out to clients with websockets' broadcast(), keeping a replayable history."""

    def __init__(self, publish_token: str, retain: int = 10_000) -> None:
        self._token = publish_token
        self.history = History(retain)
        self.clients: set[ServerConnection] = set()
        self._publisher: ServerConnection | None = None
        self._has_log = asyncio.Event()
        self._catch_up_to = 0
        self.port: int | None = None
        self.listening = threading.Event()

    # -- handshake ----------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer probes, refuse unknown paths and unauthenticated publishers before upgrading."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/publish":
            if not self._authorized(request.headers):
                log.warning("publisher refused", extra={"remote": _remote(connection)})
                return connection.respond(HTTPStatus.UNAUTHORIZED, "publish token required\n")
            return None
        if path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown path; connect to /\n")
        return None

    def _authorized(self, headers: Headers) -> bool:
        supplied = headers.get("Authorization", "")
        expected = f"Bearer {self._token}"
        return hmac.compare_digest(supplied.encode(), expected.encode())

    async def route(self, connection: ServerConnection) -> None:
        """Serve a connection by its path."""
        assert connection.request is not None
        if urlsplit(connection.request.path).path == "/publish":
            await self._serve_publisher(connection)
        else:
            await self._serve_client(connection)

    # -- clients ------------------------------------------------------------------------

    async def _serve_client(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        try:
            after, epoch = parse_query(connection.request.path)
        except BadQuery as error:
            await connection.close(POLICY_VIOLATION, str(error))
            return
        # Until a publisher says which log it serves, no head is known: wait for it (or for
        # the client to leave, so that shutting down never waits on a log that won't come).
        if not await self._wait_for_log(connection):
            return
        # No await from here to clients.add(): no live event can slip in between the history
        # and the subscription, and broadcast() writes in call order.
        history = self.history
        messages = [hello(history.head, history.epoch)]
        if after is not None:
            backlog = history.since(after, epoch)
            messages.extend(
                backlog if backlog is not None else [reset(history.head, history.epoch)]
            )
        for message in messages:
            broadcast([connection], message)
        self.clients.add(connection)
        log.info(
            "client connected",
            extra={"remote": _remote(connection), "after": after, "clients": len(self.clients)},
        )
        try:
            async for _ in connection:
                pass  # clients have nothing to say; what they send is read and dropped
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(connection)
            log.info("client disconnected", extra={"clients": len(self.clients)})

    async def _wait_for_log(self, connection: ServerConnection) -> bool:
        if self._has_log.is_set():
            return True
        has_log = asyncio.create_task(self._has_log.wait())
        closed = asyncio.create_task(connection.wait_closed())
        await asyncio.wait({has_log, closed}, return_when=asyncio.FIRST_COMPLETED)
        has_log.cancel()
        closed.cancel()
        return self._has_log.is_set() and connection.state is State.OPEN

    # -- publisher ----------------------------------------------------------------------

    async def _serve_publisher(self, connection: ServerConnection) -> None:
        if self._publisher is not None:
            # The newest publisher wins: a restarted watcher must not wait for a half-open socket.
            await self._publisher.close(1012, "replaced by a newer publisher")
        self._publisher = connection
        history = self.history
        ready = {"type": "ready", "epoch": history.epoch, "head": history.head}
        await connection.send(json.dumps({**ready, "retain": history.retain}))
        log.info("publisher connected", extra={"head_seq": history.head})
        try:
            async for message in connection:
                if not self._accept(message):
                    await connection.close(POLICY_VIOLATION, "out of sequence; reconnect")
                    return
        except ConnectionClosed:
            pass
        finally:
            if self._publisher is connection:
                self._publisher = None
            log.info("publisher disconnected", extra={"head_seq": self.history.head})

    def _accept(self, message: str | bytes) -> bool:
        try:
            data = json.loads(message)
            if isinstance(data, dict) and data.get("type") == "log":
                after = int(data["after"])
                self._start_log(str(data["epoch"]), after, int(data.get("head", after)))
                return True
            event = decode(data)
        except (ValueError, KeyError, TypeError, EventFormatError) as error:
            log.error("bad message from publisher", extra={"error": str(error)})
            return False
        text = event.encode()
        try:
            if not self.history.add(event.seq, text):
                return True  # a repeat after the publisher reconnected
        except SequenceGap as error:
            log.error("publisher skipped events", extra={"error": str(error)})
            return False
        if self.history.head >= self._catch_up_to:
            self._has_log.set()
        broadcast(self.clients, text)
        desk_id = event.desk_id if isinstance(event, DeskEvent) else None
        log.info(
            "event",
            extra={
                "seq": event.seq,
                "type": event.type,
                "desk_id": desk_id,
                "clients": len(self.clients),
            },
        )
        return True

    def _start_log(self, epoch: str, after: int, head: int) -> None:
        changed = self.history.epoch is not None and self.history.epoch != epoch
        self.history.start(epoch, after)
        # Serve clients once the backlog up to the log's head has arrived: a client resuming
        # at a seq inside it must be replayed to, not told to reset.
        self._catch_up_to = head
        if after >= head:
            self._has_log.set()
        log.info("following log", extra={"epoch": epoch, "after_seq": after})
        if changed:
            # The clients' positions belong to the old log: they must reload their snapshots.
            broadcast(self.clients, reset(after, epoch))

    # -- running ------------------------------------------------------------------------

    async def serve(self, host: str, port: int, stop: asyncio.Future[None]) -> None:
        """Listen on host:port until `stop` resolves."""
        async with serve(
            self.route,
            host,
            port,
            process_request=self.check_request,
            compression=None,  # per-connection zlib buffers cost more memory than they save
            max_size=MAX_MESSAGE_BYTES,
        ) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self.listening.set()
            log.info("listening", extra={"url": f"ws://{host}:{self.port}/"})
            await stop
        self.listening.clear()

    def run(self, host: str, port: int, stop: threading.Event) -> None:
        """Serve in this thread's own event loop until `stop` is set."""

        async def main() -> None:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter = asyncio.create_task(asyncio.to_thread(stop.wait))

            def finish(_: asyncio.Task[bool]) -> None:
                if not done.done():
                    done.set_result(None)

            waiter.add_done_callback(finish)
            await self.serve(host, port, done)

        asyncio.run(main())


def _remote(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
