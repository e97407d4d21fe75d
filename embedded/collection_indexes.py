"""A collection's indexes and life cycle: create, drop and list indexes; drop and rename it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import bson
from mongomock import helpers
from pymongo.errors import OperationFailure

from embedded.catalog import ID, ID_INDEX
from embedded.collection_core import CollectionCore
from embedded.options import refuse_unsupported

Document = dict[str, Any]


class CollectionIndexes(CollectionCore):
    """Index and collection DDL, recorded in the oplog as MongoDB records it."""

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
