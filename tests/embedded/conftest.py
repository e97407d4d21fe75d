"""The contract suite's backends: the embedded store in memory and in a file, and a real replica
set when DESKS_TEST_MONGODB_URI names one."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from embedded import EmbeddedClient

REAL_URI = os.environ.get("DESKS_TEST_MONGODB_URI")


@pytest.fixture(params=["memory", "file", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def database(request: pytest.FixtureRequest, tmp_path) -> Iterator[Any]:
    """Yield an empty database on each backend."""
    if request.param != "mongodb":
        path = ":memory:" if request.param == "memory" else tmp_path / "store.sqlite3"
        client = EmbeddedClient(path, history_size=1000)
        yield client["contract"]
        client.close()
        return
    if not REAL_URI:
        pytest.skip("DESKS_TEST_MONGODB_URI is not set: no real replica set to test against")
    client: MongoClient[dict[str, Any]] = MongoClient(REAL_URI, serverSelectionTimeoutMS=5000)
    name = f"desks_contract_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        client.drop_database(name)
        client.close()


@pytest.fixture
def embedded() -> Iterator[EmbeddedClient]:
    """Yield an in-memory embedded client with a short history, for fault-injection tests."""
    client = EmbeddedClient(history_size=5, noop_interval=3600)
    yield client
    client.close()


@pytest.fixture
def store_path(tmp_path) -> str:
    """Return the path of a store file that does not exist yet."""
    return str(tmp_path / "store.sqlite3")
