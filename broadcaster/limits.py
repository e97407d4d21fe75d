"""What one client may cost a broadcaster, and how many it holds."""

from __future__ import annotations

from dataclasses import dataclass


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
