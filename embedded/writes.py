"""The write path, inside one transaction: the document's row, its index entries, its oplog entry.

Everything a write changes commits together or not at all, so readers and change streams never
see a write half done, and a write an index rejects leaves no trace.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import bson
from pymongo.errors import DocumentTooLarge, DuplicateKeyError, WriteError

from embedded import documents, keys
from embedded.catalog import ID, Catalog, Collection, Index
from embedded.cursor import rows
from embedded.oplog import Oplog, update_description
from embedded.query import Row

Document = dict[str, Any]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


class Transaction:
    """The writes of one SQLite transaction, each recorded in the oplog as it is made."""

    def __init__(self, connection: sqlite3.Connection, catalog: Catalog, oplog: Oplog) -> None:
        self.connection = connection
        self.catalog = catalog
        self._oplog = oplog

    def collection(self, db: str, name: str) -> Collection | None:
        """Return the collection db.name, or None if it does not exist."""
        return self.catalog.get(self.connection, db, name)

    def ensure(self, db: str, name: str) -> Collection:
        """Return the collection db.name, creating it if needed (a first write does)."""
        return self.catalog.ensure(self.connection, db, name)

    def first(
        self,
        collection: Collection | None,
        filter: Mapping[str, Any],
        sort: Sequence[tuple[str, int]] = (),
    ) -> Row | None:
        """Return the first document matching `filter` (in `sort` order), as of this write."""
        if collection is None:
            return None
        return next(rows(self._here, collection, filter, sort, limit=1), None)

    def every(self, collection: Collection | None, filter: Mapping[str, Any]) -> list[Row]:
        """Return every document matching `filter`, as of this write."""
        if collection is None:
            return []
        return list(rows(self._here, collection, filter))

    def _here(self) -> nullcontext[sqlite3.Connection]:
        return nullcontext(self.connection)

    def insert(self, collection: Collection, document: Document) -> Any:
        """Insert a document (giving it an _id, as pymongo does, if it has none)."""
        if "_id" not in document:
            document["_id"] = bson.ObjectId()  # pymongo adds it to the caller's document too
        stored = documents.id_first(document)
        raw = _encode(stored)
        try:
            cursor = self.connection.execute(
                f"INSERT INTO {collection.table} (id, doc) VALUES (?, ?)", (_id_key(stored), raw)
            )
        except sqlite3.IntegrityError:
            raise _duplicate(collection, ID, stored) from None
        rid = int(cursor.lastrowid or 0)
        for index in collection.indexes:
            self.add_entry(collection, index, rid, stored)
        key = {"_id": stored["_id"]}
        self._oplog.append(
            self.connection, "insert", collection.db, collection.name, key=key, after=stored
        )
        return stored["_id"]

    def upsert(
        self, db: str, name: str, filter: Mapping[str, Any], update: Any, replacing: bool
    ) -> Document:
        """Insert what an upsert that matched nothing inserts; return it."""
        document = documents.upsert_seed(filter, update, replacing)
        check_document(document)
        self.insert(self.ensure(db, name), document)
        return document

    def modify(
        self,
        collection: Collection,
        row: Row,
        filter: Mapping[str, Any],
        update: Any,
        replacing: bool,
    ) -> tuple[Document, bool]:
        """Apply an update or a replacement; return the document after it and whether it changed."""
        rid, before = row
        if replacing:
            after = documents.replace(before, update)
        else:
            after = documents.apply_update(before, filter, update, inserting=False)
        raw = _encode(after)
        if raw == bson.encode(before):
            return after, False  # MongoDB logs nothing for a write that changes no byte
        self.connection.execute(f"UPDATE {collection.table} SET doc = ? WHERE rid = ?", (raw, rid))
        for index in collection.indexes:
            old, new = index.key(before), index.key(after)
            if old != new:
                if old is not None:
                    self._remove_entry(index, old, rid)
                self.add_entry(collection, index, rid, after)
        fields: Document = {"key": {"_id": before["_id"]}}
        if replacing:
            fields["after"] = after
        else:
            fields["description"] = update_description(before, after)
        if collection.images:
            fields.update(before=before, after=after, images=True)
        operation = "replace" if replacing else "update"
        self._oplog.append(self.connection, operation, collection.db, collection.name, **fields)
        return after, True

    def delete(self, collection: Collection, row: Row) -> None:
        """Delete one document and its index entries."""
        rid, before = row
        self.connection.execute(f"DELETE FROM {collection.table} WHERE rid = ?", (rid,))
        for index in collection.indexes:
            key = index.key(before)
            if key is not None:
                self._remove_entry(index, key, rid)
        images: Document = {"before": before, "images": True} if collection.images else {}
        key_ = {"_id": before["_id"]}
        self._oplog.append(
            self.connection, "delete", collection.db, collection.name, key=key_, **images
        )

    def add_entry(self, collection: Collection, index: Index, rid: int, document: Document) -> None:
        """Add a document's entry to a secondary index, refusing a duplicate unique key."""
        key = index.key(document)
        if key is None:
            return
        try:
            self.connection.execute(
                f"INSERT INTO {index.table} (key, rid) VALUES (?, ?)", (key, rid)
            )
        except sqlite3.IntegrityError:
            raise _duplicate(collection, index, document) from None

    def _remove_entry(self, index: Index, key: bytes, rid: int) -> None:
        self.connection.execute(f"DELETE FROM {index.table} WHERE key = ? AND rid = ?", (key, rid))

    def record(self, operation: str, db: str, coll: str | None, **fields: Any) -> None:
        """Record a write that is not a document's (drop, rename, dropDatabase)."""
        self._oplog.append(self.connection, operation, db, coll, **fields)


def check_document(document: Any) -> None:
    """Refuse what MongoDB refuses to store: non-mappings, $-prefixed top-level names."""
    if not isinstance(document, Mapping):
        raise TypeError(
            "document must be an instance of dict, bson.son.SON, or any other type that "
            "inherits from collections.MutableMapping"
        )
    documents.check_keys(document)


def _encode(document: Document) -> bytes:
    raw = bson.encode(document)
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(
            f"BSON document too large ({len(raw)} bytes) - the connected server supports "
            f"BSON document sizes up to {MAX_DOCUMENT_BYTES} bytes."
        )
    return raw


def _id_key(document: Document) -> bytes:
    key = document["_id"]
    if isinstance(key, list | tuple):
        raise WriteError("The '_id' value cannot be of type array", 53)
    return keys.encode(key)


def _duplicate(
    collection: Collection, index: Index, document: Mapping[str, Any]
) -> DuplicateKeyError:
    values = index.key_values(document)
    shown = ", ".join(f"{field}: {value!r}" for field, value in values.items())
    message = (
        f"E11000 duplicate key error collection: {collection.db}.{collection.name} "
        f"index: {index.name} dup key: {{ {shown} }}"
    )
    details = {
        "index": 0,
        "code": 11000,
        "errmsg": message,
        "keyPattern": dict(index.fields),
        "keyValue": values,
    }
    return DuplicateKeyError(message, 11000, details)
