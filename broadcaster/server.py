"""The broadcaster: one publisher feeds events in; every client on `/` gets them, in order.

Routes: `/` for dashboards and consoles (optionally `?after=<seq>&epoch=<epoch>`), `/publish`
for the watcher's publisher (bearer token), `/healthz` for probes. Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import threading
import time
import weakref
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from pymongo.errors import PyMongoError
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from broadcaster import metrics
from broadcaster.admission import Admission
from broadcaster.fanout import Fanout
from broadcaster.history import History, SequenceGap
from broadcaster.peer import POLICY_VIOLATION, Allowance, GuardedConnection, cut, remote
from broadcaster.query import BadQuery, parse_query, query_token
from desks.auth import READ, AuthError, Grant, ScopeError, Verifier, bearer
from desks.event_log import EventLog
from desks.events import DeskEvent, EventFormatError, decode, hello, reset
from desks.hosts import PageOrigins
from desks.metrics import exposition
from desks.service import STOP_TIMEOUT

log = logging.getLogger("desks.broadcaster")

MAX_MESSAGE_BYTES = 64 * 1024  # from clients, which have nothing to say
# How long a stop waits for clients to answer the closing handshake before cutting them: well
# within the time a service is given to stop (a client's close_timeout is longer).
CLOSE_BUDGET = STOP_TIMEOUT / 2
# From the authenticated publisher: any event the watcher can log (a log entry is a BSON
# document, at most 16 MiB; the watcher reduces events to DESKS_MAX_EVENT_BYTES anyway).
MAX_PUBLISHED_BYTES = 16 * 1024 * 1024
# A replay longer than this is sent with awaited (paced) sends before the final, synchronous
# hand-over to live; shorter ones go out at once.
REPLAY_CHUNK = 200
# How long a client may wait for `hello` while the broadcaster does not know its log yet.
HELLO_WAIT = 0.5
RETRY_AFTER_S = 5  # a client refused for the limits may try again after this
# The close code for a token that expired while connected (4000-4999: private use, RFC 6455).
TOKEN_EXPIRED = 4401


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server."""

    max_buffer: int = 1024 * 1024  # unsent bytes before a client is dropped (1013)
    # Clients have nothing to say: frames of any kind (pings included) beyond this are a flood,
    # closed with 1008.
    messages_per_second: float = 10.0
    message_burst: int = 50
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    close_timeout: float = 5.0  # a peer that ignores the closing handshake is cut off after this
    ahead_wait: float = 5.0  # how long a position beyond the head waits for it before `reset`
    # Clients held at once, in all and from one address; beyond them the handshake gets 503.
    # ~16 KiB an idle client (BENCHMARKS.md) plus its send buffer: 10,000 fit a small container.
    max_connections: int = 10_000
    max_per_address: int = 200


class Broadcaster:
    """Fan events out to clients with websockets' broadcast(), keeping a replayable history."""

    def __init__(
        self,
        publish_token: str,
        retain: int = 10_000,
        events: EventLog | None = None,
        limits: Limits | None = None,
        verifier: Verifier | None = None,
        origins: PageOrigins | None = None,
    ) -> None:
        self._token = publish_token
        self.origins = origins or PageOrigins()
        self.verifier = verifier or Verifier()
        self._grants: weakref.WeakKeyDictionary[ServerConnection, Grant] = (
            weakref.WeakKeyDictionary()
        )
        self._closing: set[asyncio.Task[None]] = set()
        self.history = History(retain)
        self.limits = limits or Limits()
        self.fanout = Fanout(self.limits.max_buffer)
        self._events = events
        self._publisher: ServerConnection | None = None
        self._has_log = asyncio.Event()
        self._advanced = asyncio.Event()  # set (and replaced) whenever the head moves
        self._catch_up_to = 0
        self.port: int | None = None
        metrics.CLIENTS.set_function(lambda: len(self.fanout))
        metrics.HEAD_SEQ.set_function(lambda: self.history.head)
        self.listening = threading.Event()
        self.started = threading.Event()  # set once listening, or once listening failed
        self.start_error: OSError | None = None
        self._connections: weakref.WeakSet[ServerConnection] = weakref.WeakSet()
        self.admission = Admission(self.limits.max_connections, self.limits.max_per_address)

    @property
    def clients(self) -> set[ServerConnection]:
        """Return the clients receiving live events."""
        return self.fanout.clients

    # -- handshake ----------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer probes, refuse unknown paths and unauthenticated publishers before upgrading."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            return connection.respond(HTTPStatus.OK, "ok\n")
        if path == "/readyz":  # ready once it follows a log: clients get their hello at once
            if self._has_log.is_set():
                return connection.respond(HTTPStatus.OK, "ready\n")
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "no event log yet\n")
        if path == "/metrics":
            text, content_type = exposition()
            headers = Headers([("Content-Type", content_type), ("Content-Length", str(len(text)))])
            return Response(HTTPStatus.OK, "OK", headers, text)
        if path in {"/", "/publish"}:
            # A browser's WebSocket is not fenced by CORS: any page the user opens could read
            # the feed (cross-site WebSocket hijacking), unless its Origin is checked.
            why = self.origins.refuse(request.headers.get("Origin"))
            if why is not None:
                log.warning("page refused", extra={"remote": remote(connection), "reason": why})
                return connection.respond(HTTPStatus.FORBIDDEN, f"{why}\n")
        if path == "/publish":
            if not self._authorized(request.headers):
                log.warning("publisher refused", extra={"remote": remote(connection)})
                return connection.respond(HTTPStatus.UNAUTHORIZED, "publish token required\n")
            return None
        if path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown path; connect to /\n")
        token = bearer(request.headers.get("Authorization")) or query_token(request.path)
        try:
            grant = self.verifier.check(token, READ)
        except (AuthError, ScopeError) as error:
            log.warning(
                "client refused", extra={"remote": remote(connection), "reason": str(error)}
            )
            status = (
                HTTPStatus.UNAUTHORIZED if isinstance(error, AuthError) else HTTPStatus.FORBIDDEN
            )
            refused = connection.respond(status, f"{error}\n")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="desks"'
            return refused
        full = self._admit(connection)
        if full is not None:
            return full
        if grant is not None:
            self._grants[connection] = grant
        return None

    def _admit(self, connection: ServerConnection) -> Response | None:
        """Count a client against the limits, or answer 503 with Retry-After."""
        address = connection.remote_address[0] if connection.remote_address else "?"
        why = self.admission.admit(address)
        if why is None:
            # Released once the TCP connection is gone, even if it went before this ran (a
            # reset while websockets answered a ping sent with the request): a callback added
            # to a done future still runs, once. A hook in connection_lost would miss that.
            lost = connection.connection_lost_waiter
            lost.add_done_callback(functools.partial(self._released, address))
            return None
        log.warning("client refused", extra={"remote": remote(connection), "reason": why})
        refused = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}; retry later\n")
        refused.headers["Retry-After"] = str(RETRY_AFTER_S)
        return refused

    def _released(self, address: str, _lost: object) -> None:
        # A partial of this, not a lambda: one is kept for every client (~50 bytes less each).
        self.admission.release(address)

    def _authorized(self, headers: Headers) -> bool:
        supplied = headers.get("Authorization", "")
        expected = f"Bearer {self._token}"
        return hmac.compare_digest(supplied.encode(), expected.encode())

    async def route(self, connection: ServerConnection) -> None:
        """Serve a connection by its path."""
        assert connection.request is not None
        if urlsplit(connection.request.path).path == "/publish":
            connection.protocol.max_message_size = MAX_PUBLISHED_BYTES
            await self._serve_publisher(connection)
        else:
            await self._serve_client(connection)

    # -- clients ------------------------------------------------------------------------

    async def _serve_client(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        if isinstance(connection, GuardedConnection):
            limits = self.limits
            connection.allowance = Allowance(limits.messages_per_second, limits.message_burst)
        try:
            after, epoch = parse_query(connection.request.path)
        except BadQuery as error:
            await connection.close(POLICY_VIOLATION, str(error))
            return
        # Until the log is known no head can be told: say so at once, then wait for it (or for
        # the client to leave, so that shutting down never waits on a log that won't come).
        if not await self._wait_for_log(connection, HELLO_WAIT):
            broadcast([connection], hello(None, None))
            if not await self._wait_for_log(connection, None):
                return
        broadcast([connection], hello(self.history.head, self.history.epoch))
        # Positions are only meaningful in one log: pin it, so a change of log mid-replay resets.
        log_epoch = epoch or self.history.epoch
        if after is not None and after > self.history.head:
            await self._await_head(after, log_epoch)
        try:
            position = await self._replay(connection, after, log_epoch)
        except ConnectionClosed:
            return
        # No await from here to fanout.add(): no live event can slip in between the replay
        # and the subscription, and broadcast() writes in call order.
        backlog = [] if position is None else self.history.since(position, log_epoch)
        for message in backlog if backlog is not None else [self._reset()]:
            broadcast([connection], message)
        if after is not None:
            metrics.REPLAYS.labels("replayed" if backlog is not None else "reset").inc()
        self.fanout.add(connection)
        log.info(
            "client connected",
            extra={"remote": remote(connection), "after": after, "clients": len(self.fanout)},
        )
        expiry = self._close_at_expiry(connection)
        try:
            await self._ignore_input(connection)
        finally:
            if expiry is not None:
                expiry.cancel()
            self.fanout.discard(connection)
            log.info("client disconnected", extra={"clients": len(self.fanout)})

    def _close_at_expiry(self, connection: ServerConnection) -> asyncio.TimerHandle | None:
        """Close with 4401 when the token expires: the client may reconnect with a new one."""
        grant = self._grants.get(connection)
        if grant is None:
            return None
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self.fanout.discard(connection)  # not one more event on an expired token
            closing = loop.create_task(connection.close(TOKEN_EXPIRED, "token expired"))
            self._closing.add(closing)  # the loop keeps only a weak reference to a task
            closing.add_done_callback(self._closing.discard)

        return loop.call_later(max(0.0, grant.expires_at - time.time()), expire)

    async def _replay(
        self, connection: ServerConnection, after: int | None, epoch: str | None
    ) -> int | None:
        """Send a long backlog in paced chunks; return the seq the live hand-over starts after."""
        if after is None:
            return None
        position = after
        while (backlog := self.history.since(position, epoch)) is not None:
            if len(backlog) <= REPLAY_CHUNK:
                break
            for message in backlog[:REPLAY_CHUNK]:
                await connection.send(message)  # waits while the client's buffer is full
            position += REPLAY_CHUNK
        return position

    def _reset(self) -> str:
        return reset(self.history.head, self.history.epoch)

    async def _ignore_input(self, connection: ServerConnection) -> None:
        # Clients have nothing to say: read and drop (GuardedConnection closes a flood).
        try:
            async for _ in connection:
                pass
        except ConnectionClosed:
            pass

    async def _wait_for_log(self, connection: ServerConnection, timeout: float | None) -> bool:
        if self._has_log.is_set():
            return True
        has_log = asyncio.create_task(self._has_log.wait())
        closed = asyncio.create_task(connection.wait_closed())
        await asyncio.wait({has_log, closed}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        has_log.cancel()
        closed.cancel()
        return self._has_log.is_set() and connection.state is State.OPEN

    async def _await_head(self, after: int, epoch: str | None) -> None:
        """Wait (bounded) for a head that has not reached `after` yet, as another broadcaster
        or the API may have: a position ahead is early, not unknown."""
        deadline = asyncio.get_running_loop().time() + self.limits.ahead_wait
        while after > self.history.head and epoch == self.history.epoch:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._advanced.wait(), remaining)
            except TimeoutError:
                return

    def _moved(self) -> None:
        self._advanced.set()
        self._advanced = asyncio.Event()

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
        self._moved()
        started = time.perf_counter()
        sent_to = self.fanout.send(text)
        metrics.BROADCAST_SECONDS.observe(time.perf_counter() - started)
        metrics.EVENTS_BROADCAST.inc()
        metrics.DELIVERIES.inc(sent_to)
        if log.isEnabledFor(logging.DEBUG):  # a line per event: for tracing, not for operators
            desk_id = event.desk_id if isinstance(event, DeskEvent) else None
            log.debug(
                "event",
                extra={
                    "seq": event.seq,
                    "type": event.type,
                    "desk_id": desk_id,
                    "clients": sent_to,
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
        self._moved()
        log.info("following log", extra={"epoch": epoch, "after_seq": after})
        if changed:
            # The clients' positions belong to the old log: they must reload their snapshots.
            self.fanout.send(self._reset())

    # -- starting -----------------------------------------------------------------------

    def _refill(self) -> tuple[str, int, list[tuple[int, str]]] | None:
        """Read the newest retained window from the event log (blocking; run in a thread)."""
        assert self._events is not None
        epoch = self._events.existing_epoch()
        if epoch is None:
            return None
        head = self._events.head()
        after = max(0, head - self.history.retain)
        events = self._events.after(after, self.history.retain)
        return epoch, after, [(event.seq, event.encode()) for event in events]

    async def _load_history(self) -> None:
        if self._events is None:
            return
        try:
            window = await asyncio.to_thread(self._refill)
        except PyMongoError as error:
            log.warning(
                "history not refilled; waiting for the publisher", extra={"error": str(error)}
            )
            return
        if window is None:
            return
        epoch, after, events = window
        self.history.start(epoch, after)
        for seq, text in events:
            self.history.add(seq, text)
        self._catch_up_to = self.history.head
        self._has_log.set()
        log.info("history refilled", extra={"epoch": epoch, "head_seq": self.history.head})

    async def serve(self, host: str, port: int, stop: asyncio.Future[None]) -> None:
        """Listen on host:port until `stop` resolves."""
        await self._load_history()
        server = await serve(
            self.route,
            host,
            port,
            process_request=self.check_request,
            # websockets documents a wrapper as welcome here; its annotation says a class.
            create_connection=self._new_connection,  # type: ignore[arg-type]
            compression=None,  # per-connection zlib buffers cost more memory than they save
            max_size=MAX_MESSAGE_BYTES,
            ping_interval=self.limits.ping_interval,
            ping_timeout=self.limits.ping_timeout,
            close_timeout=self.limits.close_timeout,
        )
        try:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self.listening.set()
            self.started.set()
            log.info("listening", extra={"url": f"ws://{host}:{self.port}/"})
            await stop
            await self._stop_accepting(server)
        finally:
            await self._close(server)
            self.listening.clear()
            await self._cut_the_rest()

    async def _close(self, server: Server) -> None:
        """Close the server, giving clients' closing handshakes at most CLOSE_BUDGET."""
        server.close()
        try:
            # Shielded: at the deadline only the wait ends; the cut that follows ends the close.
            await asyncio.wait_for(asyncio.shield(server.wait_closed()), CLOSE_BUDGET)
        except TimeoutError:
            log.warning("clients did not close in time; cut", extra={"budget_s": CLOSE_BUDGET})

    async def _stop_accepting(self, server: Server) -> None:
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
        for connection in self._made():
            # One whose request came is answered by the server's close (503), not cut.
            if connection.state is State.CONNECTING and connection.request is None:
                cut(connection)

    async def _cut_the_rest(self) -> None:
        """Cut every connection still here, so that none outlives this loop with its socket.

        A peer that stopped reading keeps its socket open after the server's close while
        unsent data waits. Each abort closes its socket in a callback, which the loop must
        run before it ends (one turn).
        """
        for connection in self._made():
            cut(connection)
        await asyncio.sleep(0)

    def _made(self) -> list[ServerConnection]:
        """Return the connections that have their transport (a loop turn after they are made)."""
        return [each for each in self._connections if hasattr(each, "transport")]

    def _new_connection(self, *args: Any, **kwargs: Any) -> GuardedConnection:
        """Make a connection, known before its first byte so that stopping can cut it."""
        connection = GuardedConnection(*args, **kwargs)
        self._connections.add(connection)
        return connection

    def run(self, host: str, port: int, stop: threading.Event) -> None:
        """Serve in this thread's own event loop until `stop` is set."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            done: asyncio.Future[None] = loop.create_future()

            def finish() -> None:
                if not done.done():
                    done.set_result(None)

            def relay_stop() -> None:
                stop.wait()
                if not loop.is_closed():
                    loop.call_soon_threadsafe(finish)

            # A daemon thread, not the loop's executor: if serving fails, nothing is left
            # waiting on `stop` to hold the process open at exit.
            threading.Thread(target=relay_stop, name="broadcaster-stop", daemon=True).start()
            await self.serve(host, port, done)

        try:
            asyncio.run(main())
        except OSError as error:  # e.g. the port is taken
            self.start_error = error
            log.error("cannot listen", extra={"host": host, "port": port, "error": str(error)})
        finally:
            self.started.set()
