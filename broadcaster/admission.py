"""How many clients the broadcaster holds: in all, and from any one address.

Each connection costs memory and a file descriptor for as long as it stays; without a cap one
address opening connections in a loop takes the broadcaster from everyone else. A client is
counted from its accepted handshake until its TCP connection is gone, whatever ends it.
"""

from __future__ import annotations

from collections import Counter


class Admission:
    """Admit clients while under `total` in all and `per_address` from one address."""

    def __init__(self, total: int, per_address: int) -> None:
        self.total = total
        self.per_address = per_address
        self._by_address: Counter[str] = Counter()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def admit(self, address: str) -> str | None:
        """Count a client from `address` and return None, or return why it is refused."""
        if self._count >= self.total:
            return f"the broadcaster holds its limit of {self.total} clients"
        if self._by_address[address] >= self.per_address:
            return f"this address holds its limit of {self.per_address} clients"
        self._by_address[address] += 1
        self._count += 1
        return None

    def release(self, address: str) -> None:
        """Stop counting a client of `address` (its connection is gone)."""
        self._count -= 1
        self._by_address[address] -= 1
        if self._by_address[address] <= 0:
            del self._by_address[address]
