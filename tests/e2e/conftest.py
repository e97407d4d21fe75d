"""The whole system in this process on free ports, plus small HTTP and WebSocket helpers."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """Send a JSON request; return (status, decoded body or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Listener:
    """A WebSocket client collecting messages."""

    def __init__(self, url: str) -> None:
        self._stack = contextlib.ExitStack()
        self.connection: ClientConnection = self._stack.enter_context(connect(url, open_timeout=5))

    def next(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(self.connection.recv(timeout=timeout))
        return message

    def events(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        return [self.next(timeout) for _ in range(count)]

    def quiet(self, timeout: float = 0.3) -> bool:
        """Tell whether nothing more arrives within `timeout` (used after exact counts)."""
        try:
            self.connection.recv(timeout=timeout)
        except TimeoutError:
            return True
        return False

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def listen() -> Iterator[Any]:
    """Yield a factory of listeners that are all closed afterwards."""
    listeners: list[Listener] = []

    def open_listener(url: str) -> Listener:
        listener = Listener(url)
        listeners.append(listener)
        return listener

    yield open_listener
    for listener in listeners:
        listener.close()
