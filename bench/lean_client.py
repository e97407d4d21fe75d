"""A lean WebSocket client for fan-out benchmarks: thousands of connections in one process.

It speaks just enough RFC 6455 to receive: one handshake, unmasked server frames parsed from
raw bytes (no UTF-8 check, no per-message object), pongs for pings. The `websockets` client
costs several times more CPU per message, which on a 2-core machine would measure the client
instead of the server. Each process reports the CPU it used, to show it was not the limit.
"""

from __future__ import annotations

import asyncio
import base64
import multiprocessing
import os
import re
import resource
import struct
import time
from array import array
from datetime import datetime
from typing import Any

SEQ = re.compile(rb'"seq":(\d+)')
AT = re.compile(rb'"at":"([^"]+)"')
HANDSHAKE = (
    "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Receiver(asyncio.Protocol):
    """One connection: counts text frames, and records when each sampled seq arrived."""

    def __init__(
        self, events: int, sampled: bool, opened: asyncio.Future[None], by_wall_time: bool
    ) -> None:
        self.buffer = bytearray()
        self.upgraded = False
        self.frames = 0
        self.last = 0.0
        self.events = events
        self.arrived = array("d", [0.0]) * (events + 1) if sampled and not by_wall_time else None
        # End to end: (arrival wall time, the write's wall time `at`) of every event.
        self.walls: list[tuple[float, bytes]] | None = [] if sampled and by_wall_time else None
        self.opened = opened
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buffer[: self.buffer.find(b"\r\n")]:
                self.opened.set_exception(ConnectionError(bytes(self.buffer[:end]).decode()))
                return
            del self.buffer[: end + 4]
            self.upgraded = True
            self.opened.set_result(None)
        self._frames(now)

    def _frames(self, now: float) -> None:
        buffer, position = self.buffer, 0
        while len(buffer) - position >= 2:
            opcode, length = buffer[position] & 0x0F, buffer[position + 1] & 0x7F
            start = position + 2
            if length == 126:
                if len(buffer) - position < 4:
                    break
                length, start = struct.unpack_from(">H", buffer, position + 2)[0], position + 4
            elif length == 127:
                if len(buffer) - position < 10:
                    break
                length, start = struct.unpack_from(">Q", buffer, position + 2)[0], position + 10
            if len(buffer) < start + length:
                break
            if opcode == 1:
                self.frames += 1
                self.last = now
                if self.arrived is not None:
                    found = SEQ.search(buffer, start, start + length)
                    if found and int(found.group(1)) < len(self.arrived):
                        self.arrived[int(found.group(1))] = now
                elif self.walls is not None:
                    found = AT.search(buffer, start, start + length)
                    if found:
                        self.walls.append((time.time(), bytes(found.group(1))))
            elif opcode == 9:  # ping: a pong with the same payload, masked as clients must
                self._send(0xA, bytes(buffer[start : start + length]))
            elif opcode == 8:
                self._finish()
            position = start + length
        del buffer[:position]
        if self.frames > self.events:  # the first frame is the hello
            self._finish()

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self.transport is not None and len(payload) < 126
        self.transport.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))
        self._finish()


async def _receive(
    port: int,
    path: str,
    count: int,
    events: int,
    sample_every: int,
    ready: Any,
    go: Any,
    by_wall_time: bool,
    patience: float | None,
    source: str | None = None,
) -> tuple[list[Receiver], float]:
    loop = asyncio.get_running_loop()
    local = (source, 0) if source else None
    receivers: list[Receiver] = []
    gate = asyncio.Semaphore(64)  # connect in waves: the listen backlog is finite

    async def open_one(index: int) -> None:
        async with gate:
            for attempt in range(20):
                opened: asyncio.Future[None] = loop.create_future()
                sampled = sample_every > 0 and index % sample_every == 0
                receiver = Receiver(events, sampled, opened, by_wall_time)
                try:
                    await loop.create_connection(
                        lambda r=receiver: r, "127.0.0.1", port, local_addr=local
                    )
                    key = base64.b64encode(os.urandom(16)).decode()
                    assert receiver.transport is not None
                    request = HANDSHAKE.format(path=path, host="127.0.0.1", port=port, key=key)
                    receiver.transport.write(request.encode())
                    await asyncio.wait_for(opened, 30)
                    receivers.append(receiver)
                    return
                except (OSError, TimeoutError, ConnectionError):
                    await asyncio.sleep(0.05 * (attempt + 1))
            raise ConnectionError(f"could not connect client {index}")

    await asyncio.gather(*(open_one(index) for index in range(count)))
    ready.put(count)
    await loop.run_in_executor(None, go.wait)  # the orchestrator publishes once all are in
    started = _cpu()
    # With `patience`, stop waiting after that many seconds and report what arrived.
    await asyncio.wait([r.done for r in receivers], timeout=patience)
    return receivers, _cpu() - started


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(
    port: int,
    path: str,
    count: int,
    events: int,
    sample_every: int,
    sent: Any,
    ready: Any,
    go: Any,
    finished: Any,
    results: Any,
    by_wall_time: bool = False,
    patience: float | None = None,
    source: str | None = None,
) -> None:
    """Hold `count` connections (from local address `source`, if given) until each has
    `events` events; report what they received.

    Latency is from `sent[seq]` (the publisher's monotonic clock) or, `by_wall_time`, from the
    event's own `at` (the write's wall time: end to end, whoever wrote)."""
    receivers, cpu = asyncio.run(
        _receive(port, path, count, events, sample_every, ready, go, by_wall_time, patience, source)
    )
    finished.wait()  # every event sent: `sent` holds the send times now
    latencies = [
        (arrived - sent[seq]) * 1000
        for receiver in receivers
        if receiver.arrived is not None
        for seq, arrived in enumerate(receiver.arrived)
        if seq and arrived
    ] + [
        (arrived - datetime.fromisoformat(at.decode()).timestamp()) * 1000
        for receiver in receivers
        if receiver.walls is not None
        for arrived, at in receiver.walls
    ]
    results.put(
        {
            "frames": sum(min(r.frames, events + 1) - 1 for r in receivers),
            "last": max((r.last for r in receivers), default=0.0),
            "latencies_ms": latencies,
            "cpu_s": cpu,  # while receiving, not while connecting
        }
    )


def split(count: int, processes: int) -> list[int]:
    """Return how many of `count` connections each of `processes` holds (as even as can be)."""
    return [count // processes + (i < count % processes) for i in range(processes)]


class Clients:
    """`count` lean connections spread over `processes` processes, started and read together:
    connect() when they are all in, go() to start counting, finish() for their reports."""

    def __init__(
        self,
        port: int,
        count: int,
        events: int,
        processes: int = 2,
        sample_every: int = 0,
        sent: Any = None,
        by_wall_time: bool = False,
        patience: float | None = None,
        sources: list[str] | None = None,
    ) -> None:
        """`sources`: local addresses, one per process in turn (one address has ~28,000
        ephemeral ports towards one server port)."""
        context = multiprocessing.get_context("spawn")  # fresh interpreters, no threads
        self._ready, self._go = context.Queue(), context.Event()
        self._finished, self._results = context.Event(), context.Queue()
        sent = sent if sent is not None else context.Array("d", 1, lock=False)
        shares = split(count, processes)
        self._workers = [
            context.Process(
                target=run,
                args=(port, "/", share, events, sample_every, sent, self._ready, self._go),
                kwargs={
                    "finished": self._finished,
                    "results": self._results,
                    "by_wall_time": by_wall_time,
                    "patience": patience,
                    "source": sources[index % len(sources)] if sources else None,
                },
            )
            for index, share in enumerate(shares)
            if share
        ]

    def connect(self) -> int:
        """Start the processes; return how many connections are open once all are."""
        for worker in self._workers:
            worker.start()
        return sum(self._ready.get(timeout=300) for _ in self._workers)

    def go(self) -> None:
        """Let the clients start waiting for events (after any idle measurement)."""
        self._go.set()

    def finish(self, timeout: float = 600) -> list[dict[str, Any]]:
        """Say every event was sent; return each process's report once it has them all."""
        self._finished.set()
        reports = [self._results.get(timeout=timeout) for _ in self._workers]
        for worker in self._workers:
            worker.join(30)
        return reports
