"""A Collection look-alike: each write is one transaction with its index and oplog entries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import bson
from mongomock import helpers
from mongomock.aggregate import process_pipeline
from pymongo import ReturnDocument
from pymongo import collection as pymongo_collection
from pymongo.common import validate_ok_for_replace, validate_ok_for_update
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from embedded import documents, keys, query
from embedded.catalog import ID, ID_INDEX, Collection
from embedded.changestream import EmbeddedChangeStream, Scope
from embedded.cursor import Cursor, rows, sort_spec
from embedded.options import refuse_unsupported
from embedded.query import Connect
from embedded.writes import Transaction, check_document

if TYPE_CHECKING:
    from embedded.database import EmbeddedDatabase

Document = dict[str, Any]

_PYMONGO_METHODS = {name for name in dir(pymongo_collection.Collection) if name[0] != "_"}


class EmbeddedCollection:
    """A collection of the embedded store, with pymongo's methods and MongoDB's semantics."""

    def __init__(self, database: EmbeddedDatabase, name: str) -> None:
        self.database = database
        self.name = name
        self.full_name = f"{database.name}.{name}"
        client = database.client
        self._engine = client.engine
        self._catalog = client.catalog
        self._oplog = client.oplog

    def __getattr__(self, name: str) -> Any:
        if name in _PYMONGO_METHODS:
            raise NotImplementedError(f"Collection.{name} is not supported by the embedded store")
        if name.startswith("_"):
            raise AttributeError(name)
        return EmbeddedCollection(self.database, f"{self.name}.{name}")

    def __repr__(self) -> str:
        return f"EmbeddedCollection({self.full_name!r})"

    def with_options(self, **_options: Any) -> EmbeddedCollection:
        """Return this collection: read and write concerns mean nothing on one node."""
        return self

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on this collection."""
        return self.database.client.open_stream(
            Scope(self.database.name, self.name), pipeline, options
        )

    def _info(self, connection: sqlite3.Connection) -> Collection | None:
        return self._catalog.get(connection, self.database.name, self.name)

    def _reader(self) -> tuple[Connect, Collection | None]:
        with self._engine.read() as connection:
            return self._engine.read, self._info(connection)

    # -- reads -------------------------------------------------------------------------

    def find(
        self,
        filter: Mapping[str, Any] | None = None,
        projection: Any = None,
        skip: int = 0,
        limit: int = 0,
        sort: Any = None,
        **options: Any,
    ) -> Cursor:
        """Return a cursor over the documents matching `filter`."""
        refuse_unsupported(options)
        return Cursor(
            self._reader, documents.prepare_filter(filter), projection, sort_spec(sort), skip, limit
        )

    def find_one(self, filter: Any = None, *args: Any, **kwargs: Any) -> Document | None:
        """Return the first document matching `filter` (or with _id `filter`), or None."""
        if filter is not None and not isinstance(filter, Mapping):
            filter = {"_id": filter}
        return next(self.find(filter, *args, **kwargs).limit(-1), None)

    def count_documents(
        self, filter: Mapping[str, Any], skip: int = 0, limit: int = 0, **options: Any
    ) -> int:
        """Count the documents matching `filter` (after `skip`, up to `limit`)."""
        refuse_unsupported(options)
        prepared = documents.prepare_filter(filter)
        with self._engine.read() as connection:
            collection = self._info(connection)
            if collection is None:
                return 0
        plan = query.plan(collection, prepared, ())
        if plan.exact:
            found = max(0, query.count(self._engine.read, collection, plan, query.Stats()) - skip)
            return min(found, abs(limit)) if limit else found
        return sum(1 for _ in rows(self._engine.read, collection, prepared, (), skip, limit))

    def estimated_document_count(self, **options: Any) -> int:
        """Count every document."""
        refuse_unsupported(options)
        return self.count_documents({})

    def distinct(
        self, key: str, filter: Mapping[str, Any] | None = None, **options: Any
    ) -> list[Any]:
        """Return the distinct values of `key` (array elements counted one by one)."""
        refuse_unsupported(options)
        values: list[Any] = []
        seen: set[bytes] = set()
        for document in self.find(filter, {key: 1}):
            try:
                found = helpers.get_value_by_dot(document, key)
            except KeyError:
                continue
            for value in found if isinstance(found, list) else [found]:
                encoded = keys.encode(value)
                if encoded not in seen:
                    seen.add(encoded)
                    values.append(value)
        return values

    def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], **options: Any
    ) -> Iterator[Document]:
        """Run an aggregation pipeline (a leading $match uses the indexes); $out/$merge refused."""
        refuse_unsupported(options)
        stages = [dict(stage) for stage in pipeline]
        for stage in stages:
            for name in stage:
                if name in {"$out", "$merge"}:
                    raise NotImplementedError(
                        f"aggregate with {name} is not supported by the embedded store "
                        "(it would write without change events)"
                    )
        filter: Mapping[str, Any] = {}
        if stages and set(stages[0]) == {"$match"}:
            filter = stages.pop(0)["$match"]
        found = list(self.find(filter))
        try:
            return iter(process_pipeline(found, self.database, stages, None))
        except NotImplementedError:
            raise
        except (KeyError, TypeError, ValueError) as error:
            raise OperationFailure(f"aggregate failed: {error}", 2) from None

    # -- writes ------------------------------------------------------------------------

    @contextmanager
    def _write(self, options: Mapping[str, Any]) -> Iterator[Transaction]:
        member = options.get("session") is not None  # part of the session's transaction
        with self._engine.write(member=member) as connection:
            yield Transaction(connection, self._catalog, self._oplog)

    def insert_one(self, document: Document, **options: Any) -> InsertOneResult:
        """Insert one document (adding an _id to it, as pymongo does, if it has none)."""
        refuse_unsupported(options)
        check_document(document)
        with self._write(options) as tx:
            key = tx.insert(tx.ensure(self.database.name, self.name), document)
        return InsertOneResult(key, True)

    def insert_many(
        self, documents_: Iterable[Document], ordered: bool = True, **options: Any
    ) -> InsertManyResult:
        """Insert documents in one transaction, one event each; failures as pymongo reports them."""
        refuse_unsupported(options)
        batch = list(documents_)
        if not batch:
            raise TypeError("documents must be a non-empty list")
        for document in batch:
            check_document(document)
        inserted: list[Any] = []
        errors: list[Document] = []
        with self._write(options) as tx:
            collection = tx.ensure(self.database.name, self.name)
            for index, document in enumerate(batch):
                tx.connection.execute("SAVEPOINT one_document")
                try:
                    inserted.append(tx.insert(collection, document))
                except DuplicateKeyError as error:
                    tx.connection.execute("ROLLBACK TO one_document")
                    errors.append({"index": index, "code": 11000, "errmsg": str(error)})
                    if ordered:
                        break
                finally:
                    tx.connection.execute("RELEASE one_document")
        if errors:
            failure = BulkWriteError(
                {
                    "writeErrors": errors,
                    "writeConcernErrors": [],
                    "nInserted": len(inserted),
                    "nUpserted": 0,
                    "nMatched": 0,
                    "nModified": 0,
                    "nRemoved": 0,
                    "upserted": [],
                }
            )
            self._engine.abort_transaction(failure)
            raise failure
        return InsertManyResult(inserted, True)

    def update_one(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False, **options: Any
    ) -> UpdateResult:
        """Update the first document matching `filter` (or insert one, with upsert)."""
        validate_ok_for_update(update)
        return self._update_one(filter, update, False, upsert, options)

    def replace_one(
        self,
        filter: Mapping[str, Any],
        replacement: Document,
        upsert: bool = False,
        **options: Any,
    ) -> UpdateResult:
        """Replace the first document matching `filter` (or insert one, with upsert)."""
        validate_ok_for_replace(replacement)
        return self._update_one(filter, replacement, True, upsert, options)

    def _update_one(
        self,
        filter: Mapping[str, Any],
        update: Any,
        replacing: bool,
        upsert: bool,
        options: Mapping[str, Any],
    ) -> UpdateResult:
        sort = sort_spec(options.get("sort"))
        refuse_unsupported({k: v for k, v in options.items() if k != "sort"})
        prepared = documents.prepare_filter(filter)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            row = tx.first(collection, prepared, sort)
            if row is None:
                return self._matched_nothing(tx, prepared, update, replacing, upsert)
            assert collection is not None
            _, changed = tx.modify(collection, row, prepared, update, replacing)
        return UpdateResult({"n": 1, "nModified": int(changed), "ok": 1.0}, True)

    def _matched_nothing(
        self,
        tx: Transaction,
        filter: Mapping[str, Any],
        update: Any,
        replacing: bool,
        upsert: bool,
    ) -> UpdateResult:
        if not upsert:
            return UpdateResult({"n": 0, "nModified": 0, "ok": 1.0}, True)
        inserted = tx.upsert(self.database.name, self.name, filter, update, replacing)
        return UpdateResult({"n": 1, "nModified": 0, "upserted": inserted["_id"], "ok": 1.0}, True)

    def update_many(
        self, filter: Mapping[str, Any], update: Any, upsert: bool = False, **options: Any
    ) -> UpdateResult:
        """Update every document matching `filter`, one event per changed document."""
        validate_ok_for_update(update)
        refuse_unsupported(options)
        prepared = documents.prepare_filter(filter)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            matched = tx.every(collection, prepared)
            if not matched:
                return self._matched_nothing(tx, prepared, update, False, upsert)
            assert collection is not None
            modified = sum(
                tx.modify(collection, row, prepared, update, False)[1] for row in matched
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
        **options: Any,
    ) -> Document | None:
        """Update one document atomically; return it as it was (or is, with AFTER)."""
        validate_ok_for_update(update)
        return self._find_and_modify(
            filter, update, False, projection, sort, upsert, return_document, options
        )

    def find_one_and_replace(
        self,
        filter: Mapping[str, Any],
        replacement: Document,
        projection: Any = None,
        sort: Any = None,
        upsert: bool = False,
        return_document: bool = ReturnDocument.BEFORE,
        **options: Any,
    ) -> Document | None:
        """Replace one document atomically; return it as it was (or is, with AFTER)."""
        validate_ok_for_replace(replacement)
        return self._find_and_modify(
            filter, replacement, True, projection, sort, upsert, return_document, options
        )

    def _find_and_modify(
        self,
        filter: Mapping[str, Any],
        update: Any,
        replacing: bool,
        projection: Any,
        sort: Any,
        upsert: bool,
        return_document: bool,
        options: Mapping[str, Any],
    ) -> Document | None:
        refuse_unsupported(options)
        prepared = documents.prepare_filter(filter)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            row = tx.first(collection, prepared, sort_spec(sort))
            if row is None:
                if not upsert:
                    return None
                inserted = tx.upsert(self.database.name, self.name, prepared, update, replacing)
                return documents.project(inserted, projection) if return_document else None
            assert collection is not None
            after, _ = tx.modify(collection, row, prepared, update, replacing)
        shown = after if return_document == ReturnDocument.AFTER else row[1]
        return documents.project(shown, projection)

    def delete_one(self, filter: Mapping[str, Any], **options: Any) -> DeleteResult:
        """Delete the first document matching `filter`."""
        return DeleteResult({"n": int(self._delete(filter, options) is not None), "ok": 1.0}, True)

    def find_one_and_delete(
        self, filter: Mapping[str, Any], projection: Any = None, sort: Any = None, **options: Any
    ) -> Document | None:
        """Delete one document atomically and return it."""
        deleted = self._delete(filter, {**options, "sort": sort})
        return None if deleted is None else documents.project(deleted, projection)

    def _delete(self, filter: Mapping[str, Any], options: Mapping[str, Any]) -> Document | None:
        sort = sort_spec(options.get("sort"))
        refuse_unsupported({k: v for k, v in options.items() if k != "sort"})
        prepared = documents.prepare_filter(filter)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            row = tx.first(collection, prepared, sort)
            if row is None:
                return None
            assert collection is not None
            tx.delete(collection, row)
        return row[1]

    def delete_many(self, filter: Mapping[str, Any], **options: Any) -> DeleteResult:
        """Delete every document matching `filter`, one event per document."""
        refuse_unsupported(options)
        prepared = documents.prepare_filter(filter)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            matched = tx.every(collection, prepared)
            for row in matched:
                assert collection is not None
                tx.delete(collection, row)
        return DeleteResult({"n": len(matched), "ok": 1.0}, True)

    # -- indexes -----------------------------------------------------------------------

    def create_index(self, keys_: Any, **options: Any) -> str:
        """Create an index (unique and sparse supported); an identical one is a no-op."""
        fields = [(str(f), d) for f, d in helpers.create_index_list(keys_)]
        for field, direction in fields:
            if direction not in (1, -1):
                raise NotImplementedError(
                    f"{direction!r} indexes (on {field!r}) are not supported by the embedded store"
                )
        name = str(options.pop("name", None) or helpers.gen_index_name(fields))
        unique = bool(options.pop("unique", False))
        sparse = bool(options.pop("sparse", False))
        refuse_unsupported(options)
        if fields == [("_id", 1)]:
            return ID_INDEX
        with self._write(options) as tx:
            collection = tx.ensure(self.database.name, self.name)
            for existing in collection.indexes:
                same_key = list(existing.fields) == fields
                if existing.name == name or same_key:
                    if (
                        same_key
                        and existing.name == name
                        and (existing.unique, existing.sparse) == (unique, sparse)
                    ):
                        return name
                    raise OperationFailure(
                        f"An existing index has the same name or key pattern with different "
                        f"options: {existing.name}",
                        85,
                        {"codeName": "IndexOptionsConflict"},
                    )
            index = self._catalog.create_index(
                tx.connection, collection, name, fields, unique, sparse
            )
            for rid, raw in tx.connection.execute(f"SELECT rid, doc FROM {collection.table}"):
                tx.add_entry(collection, index, rid, bson.decode(raw))
        return name

    def create_indexes(self, indexes: Sequence[Any], **options: Any) -> list[str]:
        """Create several indexes given as pymongo IndexModels."""
        refuse_unsupported(options)
        names = []
        for model in indexes:
            spec = dict(model.document)
            names.append(self.create_index(list(spec.pop("key").items()), **spec))
        return names

    def drop_index(self, index_or_name: Any, **options: Any) -> None:
        """Drop one index, given by name or by key pattern."""
        refuse_unsupported(options)
        if isinstance(index_or_name, str):
            name = index_or_name
        else:
            name = helpers.gen_index_name(helpers.create_index_list(index_or_name))
        if name == ID_INDEX:
            raise OperationFailure("cannot drop _id index", 72, {"codeName": "InvalidOptions"})
        with self._engine.write(member=options.get("session") is not None) as connection:
            collection = self._info(connection)
            index = collection.index(name) if collection else None
            if collection is None or index is None:
                raise OperationFailure(
                    f"index not found with name [{name}]", 27, {"codeName": "IndexNotFound"}
                )
            self._catalog.drop_index(connection, collection, index)

    def drop_indexes(self, **options: Any) -> None:
        """Drop every index but _id's."""
        refuse_unsupported(options)
        with self._engine.write(member=options.get("session") is not None) as connection:
            collection = self._info(connection)
            for index in collection.indexes if collection else ():
                assert collection is not None
                self._catalog.drop_index(connection, collection, index)

    def list_indexes(self, **options: Any) -> Iterator[Document]:
        """Yield each index as pymongo's list_indexes() does, _id's first."""
        refuse_unsupported(options)
        with self._engine.read() as connection:
            collection = self._info(connection)
        if collection is None:
            return iter(())
        return iter([ID.describe(), *(index.describe() for index in collection.indexes)])

    def index_information(self, **options: Any) -> dict[str, Document]:
        """Return {name: {'key': [(field, direction)], ...}} for every index."""
        information = {}
        for described in self.list_indexes(**options):
            name = described.pop("name")
            information[name] = {**described, "key": list(described["key"].items())}
        return information

    # -- collection life cycle ---------------------------------------------------------

    def drop(self, **options: Any) -> None:
        """Drop the collection, emitting drop (which invalidates its change streams)."""
        refuse_unsupported(options)
        with self._write(options) as tx:
            collection = tx.collection(self.database.name, self.name)
            if collection is not None:
                self._catalog.drop(tx.connection, collection)
                tx.record("drop", self.database.name, self.name)

    def rename(self, new_name: str, dropTarget: bool = False, **options: Any) -> None:  # noqa: N803
        """Rename the collection, emitting rename (which invalidates its change streams)."""
        refuse_unsupported(options)
        db = self.database.name
        with self._write(options) as tx:
            collection = tx.collection(db, self.name)
            if collection is None:
                raise OperationFailure(
                    "source namespace does not exist", 26, {"codeName": "NamespaceNotFound"}
                )
            target = tx.collection(db, new_name)
            if target is not None:
                if not dropTarget:
                    raise OperationFailure(
                        "target namespace exists", 48, {"codeName": "NamespaceExists"}
                    )
                self._catalog.drop(tx.connection, target)
                tx.record("drop", db, new_name)
            self._catalog.rename(tx.connection, collection, db, new_name)
            tx.record("rename", db, self.name, to=(db, new_name))
