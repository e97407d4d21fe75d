"""A collection's reads: find, counts, distinct values, aggregation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from mongomock import helpers
from mongomock.aggregate import process_pipeline
from pymongo.errors import OperationFailure

from embedded import documents, keys, planner, query
from embedded.collection_core import CollectionCore
from embedded.cursor import Cursor, rows, sort_spec
from embedded.options import refuse_unsupported

Document = dict[str, Any]


class CollectionReads(CollectionCore):
    """Reads of committed data, each in one snapshot."""

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
        plan = planner.plan(collection, prepared, ())
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
