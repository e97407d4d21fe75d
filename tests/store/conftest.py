"""The contract suite's backends: always the embedded store, a real replica set when configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import MongoClient

from embedded import EmbeddedClient

REAL_URI = os.environ.get("DESKS_TEST_MONGODB_URI")


@pytest.fixture(params=["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)])
def database(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Yield an empty database on each backend."""
    if request.param == "embedded":
        yield EmbeddedClient(history_size=1000)["contract"]
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
def embedded() -> EmbeddedClient:
    """Return an embedded client with a short history, for fault-injection tests."""
    return EmbeddedClient(history_size=5, noop_interval=3600)
