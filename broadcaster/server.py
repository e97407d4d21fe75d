"""The broadcaster: it follows the event log; every client on `/` gets its events, in order.

Routes: `/` for dashboards and consoles (optionally `?after=<seq>&epoch=<epoch>`), `/healthz`,
`/readyz` and `/metrics` for probes and scrapers. Anything else is a 404.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from broadcaster import metrics
from broadcaster.admission import Admission
from broadcaster.connections import Connections, close
from broadcaster.fanout import Fanout
from broadcaster.follower import AWAIT_MS, LogFollower, Update, Window
from broadcaster.gate import Gate
from broadcaster.history import History, SequenceGap
from broadcaster.limits import Limits
from broadcaster.peer import (
    POLICY_VIOLATION,
    Allowance,
    GuardedConnection,
    forget_handshake,
    remote,
)
from broadcaster.probes import answer_probe
from broadcaster.query import BadQuery, parse_query
from desks.auth import Verifier
from desks.event_log import EventLog
from desks.events import hello, reset
from desks.hosts import PROBES, PageOrigins
from desks.service import STOP_TIMEOUT

log = logging.getLogger("desks.broadcaster")

MAX_MESSAGE_BYTES = 64 * 1024  # from clients, which have nothing to say
# How long a stop waits for clients to answer the closing handshake before cutting them: well
# within the time a service is given to stop (a client's close_timeout is longer).
CLOSE_BUDGET = STOP_TIMEOUT / 2
# A replay longer than this is sent with awaited (paced) sends before the final, synchronous
# hand-over to live; shorter ones go out at once.
REPLAY_CHUNK = 200
# How long a client may wait for `hello` while the broadcaster does not know its log yet.
HELLO_WAIT = 0.5
GAUGE_SECONDS = 1.0  # how stale a gauge another process reports may be
# The close code for a token that expired while connected (4000-4999: private use, RFC 6455).
TOKEN_EXPIRED = 4401


class Broadcaster:
    """Fan the log's events out to clients (`Fanout`), keeping a replayable history of the
    newest `retain`."""

    def __init__(
        self,
        events: EventLog,
        retain: int = 10_000,
        limits: Limits | None = None,
        verifier: Verifier | None = None,
        origins: PageOrigins | None = None,
    ) -> None:
        self._closing: set[asyncio.Task[None]] = set()
        self.history = History(retain)
        self.limits = limits or Limits()
        self.fanout = Fanout(self.limits.max_buffer)
        self._events = events
        self.follower: LogFollower | None = None  # while serving
        self._has_log = asyncio.Event()
        self._advanced = asyncio.Event()  # set (and replaced) whenever the head moves
        self._catch_up_to = 0
        self.port: int | None = None
        self.listening = threading.Event()
        self.started = threading.Event()  # set once listening, or once listening failed
        self.following = threading.Event()  # set once it serves a log (its hello has a head)
        self.start_error: OSError | None = None
        self._connections = Connections()
        self.gate = Gate(
            origins or PageOrigins(),
            verifier or Verifier(),
            Admission(self.limits.max_connections, self.limits.max_per_address),
        )
        self.admission = self.gate.admission

    @property
    def clients(self) -> set[ServerConnection]:
        """Return the clients receiving live events."""
        return self.fanout.clients

    # -- handshake ----------------------------------------------------------------------

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer probes, refuse unknown paths and unauthorized clients before upgrading."""
        path = urlsplit(request.path).path
        if path in PROBES:
            self._gauge()  # this process's own values, fresh for its answer
            return answer_probe(connection, path, self._not_ready)
        if path != "/":
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown path; connect to /\n")
        return self.gate.check(connection, request)

    def _gauge(self) -> None:
        """Set the gauges (explicitly: other processes read them from their files too)."""
        metrics.CLIENTS.set(len(self.fanout))
        metrics.HEAD_SEQ.set(self.history.head)

    async def _keep_gauges(self) -> None:
        """Refresh the gauges every second, for a scrape another process answers."""
        while True:
            self._gauge()
            await asyncio.sleep(GAUGE_SECONDS)

    def _not_ready(self) -> str | None:
        """Say why clients cannot be served the log now, if they cannot."""
        failure = self.follower.failure if self.follower is not None else None
        if failure is not None:
            return f"event log unreadable ({failure})"
        if not self._has_log.is_set():
            return "no event log yet"
        return None

    # -- clients ------------------------------------------------------------------------

    async def serve_client(self, connection: ServerConnection) -> None:
        """Say hello, replay what the client missed, then send it every live event."""
        assert connection.request is not None
        if isinstance(connection, GuardedConnection):
            limits = self.limits
            connection.allowance = Allowance(limits.messages_per_second, limits.message_burst)
        try:
            after, epoch = parse_query(connection.request.path)
        except BadQuery as error:
            await connection.close(POLICY_VIOLATION, str(error))
            return
        forget_handshake(connection)
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
        # and the subscription, and every write reaches the transport in call order.
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
        grant = self.gate.grant_of(connection)
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

    # -- the log ------------------------------------------------------------------------

    def _take(self, update: Update) -> None:
        """Apply what the follower read: a (new) log's window, or its next events."""
        assert self.follower is not None
        try:
            if isinstance(update, Window):
                self._start_log(update)
            for seq, text in update.events:
                self._add(seq, text)
        finally:
            self.follower.taken()

    def _add(self, seq: int, text: str) -> None:
        try:
            if not self.history.add(seq, text):
                return
        except SequenceGap as error:
            # A hole in the log: those events will never come. Clients cannot be brought up to
            # date from here on; they must reload, and positions past the hole serve again.
            log.error("event log has a gap; clients reset", extra={"error": str(error)})
            assert self.history.epoch is not None
            self.history.start(self.history.epoch, seq - 1)
            self.history.add(seq, text)
            self.fanout.send(self._reset())
            self._moved()
            return
        self._moved()
        if not self._has_log.is_set():
            # Part of the window being read: clients are told its head (in their hello, or in
            # the reset of a new log), not sent its events as if they were live.
            if self.history.head >= self._catch_up_to:
                self._log_known()
            return
        started = time.perf_counter()
        sent_to = self.fanout.send(text)
        metrics.BROADCAST_SECONDS.observe(time.perf_counter() - started)
        metrics.EVENTS_BROADCAST.inc()
        metrics.DELIVERIES.inc(sent_to)
        if log.isEnabledFor(logging.DEBUG):  # a line per event: for tracing, not for operators
            log.debug("event", extra={"seq": seq, "clients": sent_to})

    def _log_known(self) -> None:
        self._has_log.set()  # for this loop's clients
        self.following.set()  # for other threads (`desks up` serves once it is set)

    def _start_log(self, window: Window) -> None:
        changed = self.history.epoch is not None and self.history.epoch != window.epoch
        self.history.start(window.epoch, window.after)
        # Serve clients once the backlog up to the log's head has arrived: a client resuming
        # at a seq inside it must be replayed to, not told to reset.
        self._catch_up_to = window.head
        if window.after >= window.head:
            self._log_known()
        else:
            self._has_log.clear()  # a client connecting now waits for the window's head
        self._moved()
        if changed:
            # The clients' positions belong to the old log: they must reload their snapshots,
            # as of the new log's head (the window's events are not sent to them).
            self.fanout.send(reset(window.head, window.epoch))

    # -- starting -----------------------------------------------------------------------

    async def serve(
        self, host: str, port: int, stop: asyncio.Future[None], reuse_port: bool = False
    ) -> None:
        """Follow the log and listen on host:port until `stop` resolves; `reuse_port`: share
        the port with other processes (SO_REUSEPORT), the kernel spreading connections."""
        loop = asyncio.get_running_loop()
        follower = self.follower = LogFollower(
            self._events,
            self.history.retain,
            lambda update: loop.call_soon_threadsafe(self._take, update),
        )
        stop_following = threading.Event()
        following = threading.Thread(
            target=follower.run, args=(stop_following,), name="broadcaster-log", daemon=True
        )
        following.start()
        gauges = asyncio.create_task(self._keep_gauges())
        try:
            await self._listen(host, port, stop, reuse_port)
        finally:
            gauges.cancel()
            stop_following.set()
            # The follower notices within one poll of its stream; the loop runs meanwhile, so
            # an update it is handing over is taken, not left waiting.
            await asyncio.to_thread(following.join, AWAIT_MS / 1000 + 1)

    async def _listen(
        self, host: str, port: int, stop: asyncio.Future[None], reuse_port: bool
    ) -> None:
        server = await serve(
            self.serve_client,
            host,
            port,
            reuse_port=reuse_port,
            process_request=self.check_request,
            # websockets documents a wrapper as welcome here; its annotation says a class.
            create_connection=self._connections.new,  # type: ignore[arg-type]
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
            await self._connections.stop_accepting(server)
        finally:
            await close(server, CLOSE_BUDGET)
            self.listening.clear()
            await self._connections.cut_the_rest()

    def _made(self) -> list[ServerConnection]:
        """Return the connections made so far that are still around (tests)."""
        return self._connections.made()

    def run(self, host: str, port: int, stop: threading.Event, reuse_port: bool = False) -> None:
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
            await self.serve(host, port, done, reuse_port)

        try:
            asyncio.run(main())
        except OSError as error:  # e.g. the port is taken
            self.start_error = error
            log.error("cannot listen", extra={"host": host, "port": port, "error": str(error)})
        finally:
            self.started.set()
