"""A collection's writes: inserts, updates, replacements, deletes; each one transaction."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ReturnDocument
from pymongo.common import validate_ok_for_replace, validate_ok_for_update
from pymongo.errors import BulkWriteError, DuplicateKeyError
from pymongo.results import DeleteResult, InsertManyResult, InsertOneResult, UpdateResult

from embedded import documents
from embedded.collection_core import CollectionCore
from embedded.cursor import sort_spec
from embedded.options import refuse_unsupported
from embedded.writes import Transaction, check_document

Document = dict[str, Any]


class CollectionWrites(CollectionCore):
    """Writes with pymongo's results and errors; each with its index and oplog entries."""

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
