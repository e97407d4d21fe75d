"""The fan-out on its own over real sockets: one frame serialized for every client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.sync.client import connect

from broadcaster.fanout import Fanout
from tests.broadcaster.test_server import StalledClient
from tests.conftest import wait_until


class FanoutServer:
    """A websockets server in a thread of its own whose clients are added to a `Fanout`."""

    def __init__(self, compression: str | None = None) -> None:
        self.fanout = Fanout(max_buffer=1 << 20)
        self.refused: list[Exception] = []
        self._compression = compression
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))

    async def _run(self) -> None:
        self._stop = asyncio.Event()

        async def handler(connection: ServerConnection) -> None:
            try:
                self.fanout.add(connection)
            except ValueError as error:
                self.refused.append(error)
                return
            await connection.wait_closed()
            self.fanout.discard(connection)

        async with serve(handler, "127.0.0.1", 0, compression=self._compression) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            await self._stop.wait()

    def call(self, function: Callable[[], Any]) -> Any:
        """Run `function` in the server's loop; return what it returns."""

        async def run() -> Any:
            return function()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def __enter__(self) -> FanoutServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def server() -> Iterator[FanoutServer]:
    with FanoutServer() as served:
        yield served


def test_every_client_gets_each_message_whole_and_in_order_at_every_frame_length(server):
    # The three lengths of a frame header (7 bits, 16 bits, 64 bits), and text that is not
    # ASCII: the bytes serialized once must be a frame websockets' own client reads back.
    messages = ["🪑 Nueva mesa creada: Mesa Ejecutiva (180x90cm)", "x" * 200, "é" * 70_000]
    with contextlib.ExitStack() as stack:
        clients = [stack.enter_context(connect(f"ws://127.0.0.1:{server.port}")) for _ in "abc"]
        wait_until(lambda: len(server.fanout) == 3)
        for message in messages:
            assert server.call(lambda message=message: server.fanout.send(message)) == 3
        for client in clients:
            assert [client.recv(timeout=5) for _ in messages] == messages


def test_a_connection_that_negotiated_compression_is_refused_not_sent_wrong_frames():
    with FanoutServer(compression="deflate") as server:
        with connect(f"ws://127.0.0.1:{server.port}", compression="deflate") as client:
            assert client.protocol.extensions  # the client did negotiate it
            wait_until(lambda: server.refused)
        assert "no extension" in str(server.refused[0])
        assert len(server.fanout) == 0


def test_a_client_whose_write_fails_is_cut_to_resume_rather_than_left_with_a_gap(server):
    with (
        connect(f"ws://127.0.0.1:{server.port}") as kept,
        connect(f"ws://127.0.0.1:{server.port}") as lost,
    ):
        wait_until(lambda: len(server.fanout) == 2)
        local = lost.socket.getsockname()
        failing = next(c for c in server.fanout.clients if c.remote_address == local)

        def refuse(data: bytes) -> None:
            raise RuntimeError("the transport refused the write")

        failing.transport.write = refuse
        assert server.call(lambda: server.fanout.send("one")) == 1
        assert server.call(lambda: server.fanout.send("two")) == 1
        assert [kept.recv(timeout=5), kept.recv(timeout=5)] == ["one", "two"]
        assert failing not in server.fanout.clients
        with pytest.raises(ConnectionClosed):
            lost.recv(timeout=5)  # cut: it gets neither "two" after missing "one", nor hangs


def test_a_client_whose_close_has_begun_gets_no_frame_after_the_close_frame(server):
    sock = StalledClient(server.port).sock  # upgraded; its bytes read raw from here on
    wait_until(lambda: len(server.fanout) == 1)
    connection = next(iter(server.fanout.clients))

    server.call(lambda: asyncio.get_running_loop().create_task(connection.close()))
    wait_until(lambda: server.call(lambda: connection.state) is State.CLOSING)
    assert server.call(lambda: server.fanout.send("after the close frame")) == 0  # not sent
    received = b""
    while len(received) < 2 or len(received) < 2 + received[1]:
        chunk = sock.recv(4096)
        assert chunk, "the server closed without a close frame"
        received += chunk
    sock.settimeout(1.0)
    with contextlib.suppress(TimeoutError):
        received += sock.recv(4096)  # anything written after the close frame is here by now
    sock.close()
    assert received[0] == 0x80 | Opcode.CLOSE and len(received) == 2 + received[1]
    assert bytes([0x80 | Opcode.TEXT]) not in received
