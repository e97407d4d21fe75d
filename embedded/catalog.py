"""The catalog: which collections and indexes exist, and the SQLite tables that hold them.

Each collection is a table `c<id>` (rowid = record id, `id` = the `_id` key, `doc` = BSON); each
secondary index a table `i<id>` of (key, record id). Table names come from integers, never
from user input. Every DDL statement writes a new random `catalog` stamp in `meta` in its own
transaction; a process keeps the catalogs of the stamps its transactions read, and each lookup
answers from the stamp of the caller's own transaction.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bson
from pymongo.errors import InvalidName

from embedded import keys

ID_INDEX = "_id_"


class MultikeyIndexUnsupported(keys.UnindexableValue):
    """An indexed path holds an array: MongoDB would build a multikey index; we refuse."""


_MISSING = object()
# Catalogs kept, newest last: one per stamp that a transaction still open may hold.
_STAMPS_KEPT = 8


@dataclass(frozen=True)
class Index:
    """A secondary index: its fields with directions, and whether keys are unique."""

    id: int
    name: str
    fields: tuple[tuple[str, int], ...]
    unique: bool = False
    sparse: bool = False

    @property
    def table(self) -> str:
        """Return the SQLite table holding the index entries."""
        return f"i{self.id}"

    def key(self, document: Mapping[str, Any]) -> bytes | None:
        """Return the entry key of `document` (None: a sparse index leaves it out)."""
        values = [_resolve(document, path, self.name) for path, _ in self.fields]
        if self.sparse and all(value is _MISSING for value in values):
            return None
        return keys.compound(
            [None if value is _MISSING else value for value in values],
            [direction for _, direction in self.fields],
        )

    def key_values(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Return the indexed values of `document`, for a duplicate-key message."""
        return {
            path: None if (value := _resolve(document, path, self.name)) is _MISSING else value
            for path, _ in self.fields
        }

    def describe(self) -> dict[str, Any]:
        """Return the index as pymongo's list_indexes() shows it."""
        described: dict[str, Any] = {"v": 2, "key": dict(self.fields), "name": self.name}
        if self.unique:
            described["unique"] = True
        if self.sparse:
            described["sparse"] = True
        return described


# The _id index is the collection table's own `id` column.
ID = Index(0, ID_INDEX, (("_id", 1),), unique=True)


@dataclass(frozen=True)
class Collection:
    """A collection that exists: its table, its secondary indexes, whether it records images."""

    id: int
    db: str
    name: str
    images: bool
    indexes: tuple[Index, ...] = field(default=())

    @property
    def table(self) -> str:
        """Return the SQLite table holding the documents."""
        return f"c{self.id}"

    def index(self, name: str) -> Index | None:
        """Return the index called `name`, the _id index included."""
        if name == ID_INDEX:
            return ID
        return next((index for index in self.indexes if index.name == name), None)


class Catalog:
    """This process's view of the collections and indexes in the store, by catalog stamp.

    Every lookup answers from the catalog of the caller's own transaction: the stamp is read
    on the caller's connection and the catalog kept for that stamp is used. Threads hold
    snapshots of different ages, so one shared "current" catalog could hand a writer the
    catalog an older reader just loaded, and the write would miss an index created since.
    """

    def __init__(self) -> None:
        self._by_stamp: dict[int, dict[tuple[str, str], Collection]] = {}
        self._lock = threading.Lock()

    def refresh(self, connection: sqlite3.Connection) -> dict[tuple[str, str], Collection]:
        """Return the collections as the transaction on `connection` sees them (loaded once
        per stamp)."""
        stamp = connection.execute("SELECT value FROM meta WHERE key = 'catalog'").fetchone()[0]
        with self._lock:
            known = self._by_stamp.get(stamp)
        if known is not None:
            return known
        indexes: dict[int, list[Index]] = {}
        for index_id, collection_id, name, spec in connection.execute(
            "SELECT id, collection, name, spec FROM indexes ORDER BY id"
        ):
            decoded = bson.decode(spec)
            fields = tuple((str(path), int(direction)) for path, direction in decoded["key"])
            index = Index(index_id, name, fields, decoded["unique"], decoded["sparse"])
            indexes.setdefault(collection_id, []).append(index)
        loaded = {
            (db, name): Collection(cid, db, name, bool(images), tuple(indexes.get(cid, ())))
            for cid, db, name, images in connection.execute(
                "SELECT id, db, name, images FROM collections"
            )
        }
        with self._lock:
            # A few stamps at once: snapshots of different ages are open in different threads.
            while len(self._by_stamp) >= _STAMPS_KEPT:
                del self._by_stamp[next(iter(self._by_stamp))]
            self._by_stamp[stamp] = loaded
        return loaded

    def get(self, connection: sqlite3.Connection, db: str, name: str) -> Collection | None:
        """Return the collection db.name as the transaction on `connection` sees it, or None."""
        return self.refresh(connection).get((db, name))

    def names(self, connection: sqlite3.Connection, db: str) -> list[str]:
        """List the collections of database `db`."""
        return sorted(name for (in_db, name) in self.refresh(connection) if in_db == db)

    def databases(self, connection: sqlite3.Connection) -> list[str]:
        """List the databases holding at least one collection."""
        return sorted({db for db, _ in self.refresh(connection)})

    # -- DDL (inside a write transaction) -------------------------------------------------

    def create(
        self, connection: sqlite3.Connection, db: str, name: str, images: bool = False
    ) -> Collection:
        """Create the collection db.name and its table."""
        _check_name(db, name)
        cursor = connection.execute(
            "INSERT INTO collections (db, name, images) VALUES (?, ?, ?)", (db, name, int(images))
        )
        table = f"c{cursor.lastrowid}"
        connection.execute(
            f"CREATE TABLE {table} (rid INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE, "
            "doc BLOB NOT NULL)"
        )
        return self._changed(connection, db, name)

    def ensure(self, connection: sqlite3.Connection, db: str, name: str) -> Collection:
        """Return the collection db.name, creating it if needed (a first write does)."""
        return self.get(connection, db, name) or self.create(connection, db, name)

    def drop(self, connection: sqlite3.Connection, collection: Collection) -> None:
        """Drop the collection's table, its index tables and its catalog entries."""
        for index in collection.indexes:
            connection.execute(f"DROP TABLE {index.table}")
        connection.execute(f"DROP TABLE {collection.table}")
        connection.execute("DELETE FROM indexes WHERE collection = ?", (collection.id,))
        connection.execute("DELETE FROM collections WHERE id = ?", (collection.id,))
        self._changed(connection, collection.db, collection.name)

    def rename(
        self, connection: sqlite3.Connection, collection: Collection, db: str, name: str
    ) -> Collection:
        """Give the collection another name; its data and indexes stay."""
        _check_name(db, name)
        connection.execute(
            "UPDATE collections SET db = ?, name = ? WHERE id = ?", (db, name, collection.id)
        )
        return self._changed(connection, db, name)

    def set_images(
        self, connection: sqlite3.Connection, collection: Collection, enabled: bool
    ) -> Collection:
        """Turn pre- and post-images on or off."""
        connection.execute(
            "UPDATE collections SET images = ? WHERE id = ?", (int(enabled), collection.id)
        )
        return self._changed(connection, collection.db, collection.name)

    def create_index(
        self,
        connection: sqlite3.Connection,
        collection: Collection,
        name: str,
        fields: Sequence[tuple[str, int]],
        unique: bool,
        sparse: bool,
    ) -> Index:
        """Create an empty index table; the caller fills it from the documents."""
        spec = bson.encode({"key": [list(f) for f in fields], "unique": unique, "sparse": sparse})
        cursor = connection.execute(
            "INSERT INTO indexes (collection, name, spec) VALUES (?, ?, ?)",
            (collection.id, name, spec),
        )
        table = f"i{cursor.lastrowid}"
        if unique:
            connection.execute(
                f"CREATE TABLE {table} (key BLOB PRIMARY KEY, rid INTEGER NOT NULL) WITHOUT ROWID"
            )
        else:
            connection.execute(
                f"CREATE TABLE {table} (key BLOB NOT NULL, rid INTEGER NOT NULL, "
                "PRIMARY KEY (key, rid)) WITHOUT ROWID"
            )
        updated = self._changed(connection, collection.db, collection.name)
        index = updated.index(name)
        assert index is not None
        return index

    def drop_index(
        self, connection: sqlite3.Connection, collection: Collection, index: Index
    ) -> None:
        """Drop one secondary index."""
        connection.execute(f"DROP TABLE {index.table}")
        connection.execute("DELETE FROM indexes WHERE id = ?", (index.id,))
        self._changed(connection, collection.db, collection.name)

    def _changed(self, connection: sqlite3.Connection, db: str, name: str) -> Collection:
        # A random stamp, not a counter: a rolled-back change must never look current later.
        connection.execute(
            "UPDATE meta SET value = ? WHERE key = 'catalog'", (secrets.randbits(62),)
        )
        return self.get(connection, db, name)  # type: ignore[return-value]


def _resolve(document: Mapping[str, Any], path: str, index_name: str) -> Any:
    value: Any = document
    for part in path.split("."):
        if isinstance(value, list | tuple):
            raise MultikeyIndexUnsupported(
                f"index {index_name!r}: {path!r} crosses an array; multikey indexes are not "
                "supported by the embedded store"
            )
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    if isinstance(value, list | tuple):
        raise MultikeyIndexUnsupported(
            f"index {index_name!r}: {path!r} holds an array; multikey indexes are not "
            "supported by the embedded store"
        )
    return value


def _check_name(db: str, name: str) -> None:
    if not name or "$" in name or "\0" in name or name.startswith(".") or name.endswith("."):
        raise InvalidName(f"collection names must not be empty, contain '$' or NUL: {name!r}")
    if not db or any(c in db for c in '/\\. "$\0'):
        raise InvalidName(f'database names must not be empty or contain /\\. "$: {db!r}')
