"""One address opening connections in a loop cannot take the broadcaster from everyone else."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from broadcaster.server import Broadcaster, Limits
from tests.broadcaster.test_server import running
from tests.conftest import wait_until


def test_clients_beyond_the_limits_get_503_and_one_address_cannot_take_them_all():
    limits = Limits(max_connections=8, max_per_address=5)
    with running(Broadcaster("p" * 32, limits=limits)) as (server, url):

        async def refused(address: str) -> InvalidStatus:
            with pytest.raises(InvalidStatus) as caught:
                await connect(f"{url}/", local_addr=(address, 0))
            return caught.value

        async def scenario() -> None:
            loop = [await connect(f"{url}/") for _ in range(5)]  # one address, in a loop
            full = await refused("127.0.0.1")
            assert full.response.status_code == 503
            assert full.response.headers["Retry-After"] == "5"
            # Others still get in, up to the limit in all.
            others = [await connect(f"{url}/", local_addr=("127.0.0.2", 0)) for _ in range(3)]
            assert (await refused("127.0.0.3")).response.status_code == 503
            # A client that leaves frees its place, however it left.
            loop[0].transport.abort()
            await asyncio.to_thread(wait_until, lambda: len(server.admission) == 7)
            again = await connect(f"{url}/")
            for client in [*loop[1:], *others, again]:
                await client.close()
            await asyncio.to_thread(wait_until, lambda: len(server.admission) == 0)

        asyncio.run(scenario())


def test_probes_and_refused_handshakes_take_no_place():
    limits = Limits(max_connections=1, max_per_address=1)
    with running(Broadcaster("p" * 32, limits=limits)) as (server, url):

        async def scenario() -> None:
            for _ in range(3):
                with pytest.raises(InvalidStatus):
                    await connect(f"{url}/nowhere")
            client = await connect(f"{url}/")
            await client.close()

        asyncio.run(scenario())
        wait_until(lambda: len(server.admission) == 0)
