"""A Collection look-alike: each write is one transaction with its index and oplog entries.

Its methods come in parts: reads (`collection_reads`), writes (`collection_writes`), indexes
and life cycle (`collection_indexes`), over what they share (`collection_core`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import collection as pymongo_collection

from embedded.changestream import EmbeddedChangeStream, Scope
from embedded.collection_core import CollectionCore
from embedded.collection_indexes import CollectionIndexes
from embedded.collection_reads import CollectionReads
from embedded.collection_writes import CollectionWrites

_PYMONGO_METHODS = {name for name in dir(pymongo_collection.Collection) if name[0] != "_"}


class EmbeddedCollection(CollectionReads, CollectionWrites, CollectionIndexes, CollectionCore):
    """A collection of the embedded store, with pymongo's methods and MongoDB's semantics."""

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
