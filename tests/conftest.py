"""Fixtures shared by every test: an embedded store, the API app and its client."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from desks.settings import Settings
from desks.store import Store, open_store
from launcher.system import System


def wait_until(
    condition: Callable[[], Any],
    timeout: float = 10.0,
    interval: float = 0.01,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Return the first truthy value of condition(), failing the test at the deadline.

    `describe` says what the state was when the deadline passed, for the failure message.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            state = f": {describe()}" if describe else ""
            raise AssertionError(f"condition not met within {timeout}s{state}")
        time.sleep(interval)


def free_port() -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def store() -> Iterator[Store]:
    """Yield a fresh embedded store."""
    store = open_store(Settings(embedded_path=":memory:"))
    yield store
    store.close()


@pytest.fixture
def app(store: Store) -> Flask:
    """Return the API app on the embedded store."""
    return create_app({"TESTING": True}, store=store)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the API app."""
    return app.test_client()


@contextlib.contextmanager
def running_system(settings: Settings) -> Iterator[System]:
    """Run the whole system on the store `settings` name; stop it and close the store after."""
    store = open_store(settings)
    system = System(settings, store)
    try:
        system.start()
        yield system
    finally:
        system.stop()
        store.close()


@pytest.fixture
def system() -> Iterator[System]:
    """Yield a running system (embedded store, API and broadcaster on free ports)."""
    with running_system(Settings(embedded_path=":memory:", api_port=0, broadcaster_port=0)) as up:
        yield up
