"""One address opening connections in a loop cannot take the broadcaster from everyone else."""

from __future__ import annotations

import contextlib
import socket

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from broadcaster.server import Broadcaster, Limits
from tests.broadcaster.test_server import running
from tests.conftest import wait_until


def refused(url: str, address: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught, connect(url, source_address=(address, 0)):
        pass
    return caught.value


def test_clients_beyond_the_limits_get_503_and_one_address_cannot_take_them_all():
    limits = Limits(max_connections=8, max_per_address=5)
    with running(Broadcaster("p" * 32, limits=limits)) as (server, base):
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
    with running(Broadcaster("p" * 32, limits=limits)) as (server, base):
        for _ in range(3):
            with pytest.raises(InvalidStatus), connect(f"{base}/nowhere"):
                pass
        with connect(f"{base}/"):
            pass
        wait_until(lambda: len(server.admission) == 0)
