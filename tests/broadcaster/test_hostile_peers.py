"""Hostile WebSocket peers cost bounded memory: a ping flood, clients that never read."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import threading
import time

from websockets.sync.client import connect

from broadcaster.limits import Limits
from desks.event_log import EventLog
from desks.events import decode
from embedded import EmbeddedClient
from tests.conftest import free_port, wait_until
from tests.processes import desks_env, http_status, spawned

FLOOD_SECONDS = 30
SLOW_CLIENTS = 5
# A masked PING frame with no payload: FIN + opcode 9, mask bit + length 0, the masking key.
PING = bytes([0x89, 0x80]) + os.urandom(4)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def established(server_port: int, client_port: int) -> bool:
    """Tell whether the server still holds a socket to this client (from /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote = fields[1].split(":")[1], fields[2].split(":")[1]
            if int(local, 16) == server_port and int(remote, 16) == client_port:
                return True
    return False


def raw_client(port: int) -> socket.socket:
    """Open a WebSocket by hand, with a tiny receive buffer, and never read from it again."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)  # byte by byte: leave every frame unread
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def flood(port: int, until: float, connections: list[int]) -> None:
    """Send pings as fast as possible and never read; reconnect whenever cut off."""
    while time.monotonic() < until:
        try:
            sock = raw_client(port)
        except OSError:
            continue
        connections.append(1)
        sock.settimeout(0.5)
        with sock:
            while time.monotonic() < until:
                try:
                    sock.sendall(PING * 1000)
                except TimeoutError:
                    continue  # the server stopped reading: keep pushing until it cuts us off
                except OSError:
                    break


class Log:
    """The log the broadcaster process follows, written from this process as the watcher does."""

    def __init__(self, path: str) -> None:
        self.store = EmbeddedClient(path, synchronous="NORMAL")
        self.events = EventLog(self.store["desks"])
        self.events.epoch()
        self.head = 0

    def append(self, count: int) -> None:
        """Log `count` more events, in one write."""
        seqs = range(self.head + 1, self.head + count + 1)
        self.events.append_many([(decode(json.loads(event(seq))), f"t{seq}") for seq in seqs])
        self.head += count


def event(seq: int) -> str:
    desk = {"id": f"{seq:024x}", "name": "x" * 1000, "width": 1, "height": 1, "version": 1}
    return json.dumps(
        {
            "type": "desk_created",
            "seq": seq,
            "at": "2026-11-28T14:30:45.000Z",
            "desk_id": desk["id"],
            "version": 1,
            "desk": desk,
        }
    )


def test_a_ping_flood_and_dropped_slow_clients_leave_memory_bounded(tmp_path):
    port = free_port()
    path = str(tmp_path / "store.sqlite3")
    env = desks_env(DESKS_EMBEDDED_PATH=path, DESKS_HISTORY_SIZE="100")
    log = tmp_path / "broadcaster.log"
    with contextlib.ExitStack() as stack:
        written = Log(path)
        stack.callback(written.store.close)
        process = stack.enter_context(spawned(log, env, "broadcaster", "--port", str(port)))
        wait_until(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 20)
        for _ in range(3):  # warm up: a few clients come, get events and go
            with connect(f"ws://127.0.0.1:{port}/") as client:
                client.recv(timeout=5)
                written.append(100)
                for _ in range(100):
                    client.recv(timeout=5)
        baseline = rss_bytes(process.pid)
        samples = [baseline]
        stop_sampling = threading.Event()

        def sample() -> None:
            while not stop_sampling.wait(0.25):
                with contextlib.suppress(OSError):  # the process is gone: the test says why
                    samples.append(rss_bytes(process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        floods: list[int] = []
        flooder = threading.Thread(
            target=flood, args=(port, time.monotonic() + FLOOD_SECONDS, floods), daemon=True
        )
        flooder.start()

        slow = [stack.enter_context(raw_client(port)) for _ in range(SLOW_CLIENTS)]
        ports = [sock.getsockname()[1] for sock in slow]
        for _ in range(40):  # ~4.5 MB each: far past the 1 MiB a client may have waiting
            written.append(100)
        close_timeout = Limits().close_timeout
        wait_until(
            lambda: not any(established(port, p) for p in ports),
            timeout=close_timeout + 5,
            describe=lambda: f"still open: {[p for p in ports if established(port, p)]}",
        )
        flooder.join(FLOOD_SECONDS + 10)
        stop_sampling.set()
        sampler.join(5)

        growth = max(samples) - baseline
        assert len(floods) >= 2  # the flooder was cut off and came back at least once
        assert growth < 20 * 1024 * 1024, f"RSS grew {growth / 2**20:.1f} MiB"
        assert process.poll() is None
        text = log.read_text()
        assert text.count("slow client dropped") == SLOW_CLIENTS
        assert "client flooding; closed" in text
