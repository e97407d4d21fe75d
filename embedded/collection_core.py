"""What every part of a collection stands on: its names, the store, and one write transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from embedded.catalog import Collection
from embedded.query import Connect
from embedded.writes import Transaction

if TYPE_CHECKING:
    from embedded.database import EmbeddedDatabase


class CollectionCore:
    """A collection's place in the store: the parts below add reads, writes and indexes."""

    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self.full_name = f"{database.name}.{name}"
        client = database.client
        self._engine = client.engine
        self._catalog = client.catalog
        self._oplog = client.oplog

    def _info(self, connection: sqlite3.Connection) -> Collection | None:
        return self._catalog.get(connection, self.database.name, self.name)

    def _reader(self) -> tuple[Connect, Collection | None]:
        with self._engine.read() as connection:
            return self._engine.read, self._info(connection)

    @contextmanager
    def _write(self, options: Mapping[str, Any]) -> Iterator[Transaction]:
        member = options.get("session") is not None  # part of the session's transaction
        with self._engine.write(member=member) as connection:
            yield Transaction(connection, self._catalog, self._oplog)
