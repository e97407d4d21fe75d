"""One address opening connections in a loop cannot take the broadcaster from everyone else."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import urllib.request

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from broadcaster.limits import Limits
from broadcaster.server import Broadcaster
from tests.broadcaster.test_server import new_log, running
from tests.conftest import wait_until


def refused(url: str, address: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught, connect(url, source_address=(address, 0)):
        pass
    return caught.value


def test_clients_beyond_the_limits_get_503_and_one_address_cannot_take_them_all():
    limits = Limits(max_connections=8, max_per_address=5)
    with running(Broadcaster(new_log(), limits=limits)) as (server, base):
        url = f"{base}/"
        with contextlib.ExitStack() as clients:
            held = [clients.enter_context(connect(url)) for _ in range(5)]  # one address, a loop
            full = refused(url, "127.0.0.1")
            assert full.response.status_code == 503
            assert full.response.headers["Retry-After"] == "5"
            # Others still get in, up to the limit in all.
            for _ in range(3):
                clients.enter_context(connect(url, source_address=("127.0.0.2", 0)))
            assert refused(url, "127.0.0.3").response.status_code == 503
            # A client that leaves frees its place, however it left (here: its socket cut).
            held[0].socket.shutdown(socket.SHUT_RDWR)
            wait_until(lambda: len(server.admission) == 7)
            clients.enter_context(connect(url))
        wait_until(lambda: len(server.admission) == 0)


def test_probes_and_refused_handshakes_take_no_place():
    limits = Limits(max_connections=1, max_per_address=1)
    with running(Broadcaster(new_log(), limits=limits)) as (server, base):
        for _ in range(3):
            with pytest.raises(InvalidStatus), connect(f"{base}/nowhere"):
                pass
        with connect(f"{base}/"):
            pass
        wait_until(lambda: len(server.admission) == 0)


def test_probes_pass_a_full_broadcaster():
    limits = Limits(max_connections=1, max_per_address=1)
    with running(Broadcaster(new_log(), limits=limits)) as (server, base):
        with connect(f"{base}/"):
            for path in ("/healthz", "/metrics"):
                with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}") as probe:
                    assert probe.status == 200
            assert len(server.admission) == 1


def request_with_a_ping() -> bytes:
    """Return a WebSocket upgrade request followed by a masked ping, as one write."""
    key = base64.b64encode(os.urandom(16)).decode()
    mask = os.urandom(4)
    ping = bytes([0x89, 0x81]) + mask + bytes([ord("x") ^ mask[0]])
    request = (
        f"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return request.encode() + ping


def test_a_connection_reset_during_its_handshake_frees_its_place():
    # websockets answers a ping that came with the request while parsing it, before the
    # handshake is checked: on a reset socket that write fails and the connection is lost
    # before its place is taken (found in review: each such client kept its place forever).
    limits = Limits(max_connections=20, max_per_address=20)
    with running(Broadcaster(new_log(), limits=limits)) as (server, base):
        for _ in range(20):
            attacker = socket.create_connection(("127.0.0.1", server.port))
            attacker.sendall(request_with_a_ping())
            attacker.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            attacker.close()

        def gets_in() -> bool:
            try:
                with connect(f"{base}/"):
                    return True
            except InvalidStatus:
                return False

        wait_until(gets_in)
        wait_until(lambda: len(server.admission) == 0)
