"""The embedded store: mongomock behind pymongo's client API, with change streams.

Every write runs under the oplog's lock and appends its change before the lock is released, so
change streams see writes exactly once, in commit order. Reads go straight to mongomock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import mongomock
from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from desks.store.changestream import EmbeddedChangeStream, Scope
from desks.store.oplog import Document, Oplog

_WATCH_OPTIONS = (
    "full_document",
    "resume_after",
    "max_await_time_ms",
    "start_at_operation_time",
    "start_after",
    "full_document_before_change",
)


class EmbeddedClient:
    """A MongoClient look-alike holding its databases in memory, with change streams."""

    def __init__(self, history_size: int = 100_000, noop_interval: float = 10.0) -> None:
        self._mock: Any = mongomock.MongoClient()
        self.oplog = Oplog(history_size, noop_interval)
        self._images: set[tuple[str, str]] = set()  # collections with pre- and post-images

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        return EmbeddedDatabase(self, name)

    def get_database(self, name: str, **_options: Any) -> EmbeddedDatabase:
        """Return the database called `name`."""
        return EmbeddedDatabase(self, name)

    @property
    def admin(self) -> EmbeddedDatabase:
        """Return the admin database (for `command('ping')`)."""
        return EmbeddedDatabase(self, "admin")

    def list_database_names(self) -> list[str]:
        """List databases holding at least one collection."""
        return list(self._mock.list_database_names())

    def drop_database(self, name: str) -> None:
        """Drop a database, emitting drop events for its collections, then dropDatabase."""
        database = self[name]
        with self.oplog.lock:
            for coll in database.list_collection_names():
                database[coll].drop()
            self._mock.drop_database(name)
            self.oplog.append("dropDatabase", name, None)

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on every database."""
        return self.open_stream(Scope(), pipeline, options)

    def open_stream(
        self, scope: Scope, pipeline: Sequence[Mapping[str, Any]] | None, options: dict[str, Any]
    ) -> EmbeddedChangeStream:
        """Open a change stream on `scope`, accepting pymongo's watch() keyword arguments."""
        known = {k: v for k, v in options.items() if k in _WATCH_OPTIONS}
        for name, value in options.items():
            if name not in _WATCH_OPTIONS and value is not None and name != "batch_size":
                raise NotImplementedError(
                    f"watch({name}=...) is not emulated by the embedded store"
                )
        return EmbeddedChangeStream(self.oplog, scope, self._lookup, pipeline, **known)

    def _lookup(self, db: str, coll: str, key: Any) -> Document | None:
        found: Document | None = self._mock[db][coll].find_one({"_id": key})
        return found

    def images_enabled(self, db: str, coll: str) -> bool:
        """Tell whether writes to db.coll record pre- and post-images."""
        return (db, coll) in self._images

    def set_images(self, db: str, coll: str, enabled: bool) -> None:
        """Turn pre- and post-images on or off for db.coll."""
        (self._images.add if enabled else self._images.discard)((db, coll))

    def close(self) -> None:
        """Do nothing: the data lives as long as this object."""

    def __enter__(self) -> EmbeddedClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class EmbeddedDatabase:
    """A Database look-alike whose collections record their writes in the oplog."""

    def __init__(self, client: EmbeddedClient, name: str) -> None:
        self.client = client
        self.name = name
        self._mock = client._mock[name]

    def __getitem__(self, name: str) -> EmbeddedCollection:
        return EmbeddedCollection(self, name)

    def __getattr__(self, name: str) -> EmbeddedCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return EmbeddedCollection(self, name)

    def get_collection(self, name: str, **_options: Any) -> EmbeddedCollection:
        """Return the collection called `name`."""
        return EmbeddedCollection(self, name)

    def list_collection_names(self) -> list[str]:
        """List the collections that exist."""
        return list(self._mock.list_collection_names())

    def create_collection(
        self,
        name: str,
        changeStreamPreAndPostImages: Mapping[str, Any] | None = None,  # noqa: N803
    ) -> EmbeddedCollection:
        """Create a collection, optionally recording pre- and post-images for change streams."""
        self._mock.create_collection(name)
        if changeStreamPreAndPostImages is not None:
            self.client.set_images(self.name, name, bool(changeStreamPreAndPostImages["enabled"]))
        return EmbeddedCollection(self, name)

    def command(self, command: str | Mapping[str, Any], value: Any = 1, **kwargs: Any) -> Document:
        """Run `ping` or `collMod` (pre- and post-images); other commands are not emulated."""
        spec = {command: value, **kwargs} if isinstance(command, str) else dict(command)
        name = next(iter(spec))
        if name in {"ping", "hello", "isMaster", "ismaster"}:
            return {"ok": 1.0}
        if name == "collMod":
            images = spec.get("changeStreamPreAndPostImages")
            if images is not None:
                self.client.set_images(self.name, spec[name], bool(images["enabled"]))
            return {"ok": 1.0}
        raise OperationFailure(f"no such command: '{name}'", 59, {"codeName": "CommandNotFound"})

    def drop_collection(self, name: str) -> None:
        """Drop a collection, emitting its drop event."""
        self[name].drop()

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on this database."""
        return self.client.open_stream(Scope(self.name), pipeline, options)


class EmbeddedCollection:
    """A Collection look-alike: mongomock for the data, the oplog for every effective write."""

    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self.full_name = f"{database.name}.{name}"
        self._oplog = database.client.oplog
        self._mock = database._mock[name]

    def __getattr__(self, name: str) -> Any:
        if name in {"bulk_write", "update_search_index", "insert", "save", "remove"}:
            raise NotImplementedError(f"{name}() is not emulated by the embedded store")
        # Reads and index management have no change events: mongomock serves them as is.
        return getattr(self._mock, name)

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on this collection."""
        return self.database.client.open_stream(
            Scope(self.database.name, self.name), pipeline, options
        )

    def with_options(self, **_options: Any) -> EmbeddedCollection:
        """Return this collection: read/write options mean nothing in memory."""
        return self

    # -- change recording --------------------------------------------------------------

    def _record(self, operation: str, before: Document | None, after: Document | None) -> None:
        key = {"_id": (after or before or {})["_id"]}
        self._oplog.append(
            operation,
            self.database.name,
            self.name,
            document_key=key,
            before=before,
            after=after,
            images=self.database.client.images_enabled(self.database.name, self.name),
        )

    def _get(self, key: Any) -> Document | None:
        found: Document | None = self._mock.find_one({"_id": key})
        if found is None:
            return None
        # A server stores _id first, whatever order the client's dict had.
        return {"_id": found.pop("_id"), **found}

    # -- inserts -----------------------------------------------------------------------

    def insert_one(self, document: Document, **kwargs: Any) -> InsertOneResult:
        """Insert one document."""
        with self._oplog.lock:
            result = self._mock.insert_one(document, **kwargs)
            self._record("insert", None, self._get(result.inserted_id))
        return InsertOneResult(result.inserted_id, True)

    def insert_many(
        self, documents: Iterable[Document], ordered: bool = True, **kwargs: Any
    ) -> InsertManyResult:
        """Insert documents one by one (one event each), reporting failures as pymongo does."""
        inserted: list[Any] = []
        errors: list[Document] = []
        with self._oplog.lock:
            for index, document in enumerate(documents):
                try:
                    inserted.append(self.insert_one(document, **kwargs).inserted_id)
                except DuplicateKeyError as error:
                    errors.append({"index": index, "code": 11000, "errmsg": str(error)})
                    if ordered:
                        break
        if errors:
            raise BulkWriteError({"writeErrors": errors, "nInserted": len(inserted)})
        return InsertManyResult(inserted, True)

    # -- updates -----------------------------------------------------------------------

    def _update_by_id(
        self, before: Document, update: Any, replace: bool, **kwargs: Any
    ) -> Document:
        if replace:
            self._mock.replace_one({"_id": before["_id"]}, update, **kwargs)
        else:
            self._mock.update_one({"_id": before["_id"]}, update, **kwargs)
        after = self._get(before["_id"])
        assert after is not None
        if after != before:  # MongoDB logs no event for a write that changes nothing.
            self._record("replace" if replace else "update", before, after)
        return after

    def _upsert(self, filter: Mapping[str, Any], update: Any, replace: bool) -> Any:
        if replace:
            result = self._mock.replace_one(filter, update, upsert=True)
        else:
            result = self._mock.update_one(filter, update, upsert=True)
        self._record("insert", None, self._get(result.upserted_id))
        return result.upserted_id

    def _write_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        replace: bool,
        upsert: bool,
        sort: Any = None,
        **kwargs: Any,
    ) -> UpdateResult:
        with self._oplog.lock:
            before = self._mock.find_one(filter, sort=sort)
            if before is None:
                if not upsert:
                    # Still let mongomock validate the update document.
                    check = self._mock.replace_one if replace else self._mock.update_one
                    check(filter, update, **kwargs)
                    return UpdateResult({"n": 0, "nModified": 0, "ok": 1.0}, True)
                upserted = self._upsert(filter, update, replace)
                return UpdateResult({"n": 1, "nModified": 0, "upserted": upserted, "ok": 1.0}, True)
            after = self._update_by_id(before, update, replace, **kwargs)
            modified = int(after != before)
            return UpdateResult({"n": 1, "nModified": modified, "ok": 1.0}, True)

    def update_one(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        """Update the first document matching `filter`."""
        return self._write_one(filter, update, False, upsert, **kwargs)

    def replace_one(
        self, filter: Mapping[str, Any], replacement: Document, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        """Replace the first document matching `filter`."""
        return self._write_one(filter, replacement, True, upsert, **kwargs)

    def update_many(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False, **kwargs: Any
    ) -> UpdateResult:
        """Update every document matching `filter`, one event per changed document."""
        with self._oplog.lock:
            matched = list(self._mock.find(filter))
            if not matched:
                return self._write_one(filter, update, False, upsert, **kwargs)
            modified = sum(
                self._update_by_id(doc, update, False, **kwargs) != doc for doc in matched
            )
            return UpdateResult({"n": len(matched), "nModified": modified, "ok": 1.0}, True)

    def find_one_and_update(
        self,
        filter: Mapping[str, Any],
        update: Any,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Document | None:
        """Update one document atomically and return it as it was (or is, with AFTER)."""
        return self._find_and_write(
            filter, update, False, projection, sort, upsert, return_document
        )

    def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Document,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **kwargs: Any,
    ) -> Document | None:
        """Replace one document atomically and return it as it was (or is, with AFTER)."""
        return self._find_and_write(
            filter, replacement, True, projection, sort, upsert, return_document
        )

    def _find_and_write(
        self,
        filter: Mapping[str, Any],
        update: Any,
        replace: bool,
        projection: Any,
        sort: Any,
        upsert: bool,
        return_document: bool,
    ) -> Document | None:
        with self._oplog.lock:
            before = self._mock.find_one(filter, sort=sort)
            if before is None:
                if not upsert:
                    return None
                key = self._upsert(filter, update, replace)
            else:
                key = before["_id"]
                shown_before: Document | None = self._mock.find_one({"_id": key}, projection)
                self._update_by_id(before, update, replace)
                if return_document == ReturnDocument.BEFORE:
                    return shown_before
            if return_document == ReturnDocument.BEFORE:
                return None
            shown: Document | None = self._mock.find_one({"_id": key}, projection)
            return shown

    # -- deletes -----------------------------------------------------------------------

    def delete_one(self, filter: Mapping[str, Any], **kwargs: Any) -> DeleteResult:
        """Delete the first document matching `filter`."""
        with self._oplog.lock:
            before = self._mock.find_one(filter)
            if before is None:
                return DeleteResult({"n": 0, "ok": 1.0}, True)
            self._delete(before)
            return DeleteResult({"n": 1, "ok": 1.0}, True)

    def delete_many(self, filter: Mapping[str, Any], **kwargs: Any) -> DeleteResult:
        """Delete every document matching `filter`, one event per document."""
        with self._oplog.lock:
            matched = list(self._mock.find(filter))
            for document in matched:
                self._delete(document)
            return DeleteResult({"n": len(matched), "ok": 1.0}, True)

    def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any = None, sort: Any = None, **kwargs: Any
    ) -> Document | None:
        """Delete one document atomically and return it."""
        with self._oplog.lock:
            before = self._mock.find_one(filter, sort=sort)
            if before is None:
                return None
            shown: Document | None = self._mock.find_one({"_id": before["_id"]}, projection)
            self._delete(before)
        return shown

    def _delete(self, before: Document) -> None:
        self._mock.delete_one({"_id": before["_id"]})
        self._record("delete", before, None)

    # -- collection lifecycle ----------------------------------------------------------

    def drop(self, **_kwargs: Any) -> None:
        """Drop the collection, emitting drop (and invalidating its change streams)."""
        with self._oplog.lock:
            if self.name not in self.database.list_collection_names():
                return
            self._mock.drop()
            self.database.client.set_images(self.database.name, self.name, False)
            self._oplog.append("drop", self.database.name, self.name)

    def rename(self, new_name: str, **kwargs: Any) -> None:
        """Rename the collection, emitting rename (and invalidating its change streams)."""
        with self._oplog.lock:
            self._mock.rename(new_name, **kwargs)
            client = self.database.client
            if client.images_enabled(self.database.name, self.name):
                client.set_images(self.database.name, self.name, False)
                client.set_images(self.database.name, new_name, True)
            self._oplog.append(
                "rename", self.database.name, self.name, to=(self.database.name, new_name)
            )
