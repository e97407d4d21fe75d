"""Find cursors: pymongo's Cursor API (sort, skip, limit, explain) over planned scans."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from mongomock import helpers
from pymongo.errors import InvalidOperation

from embedded import documents, planner, query
from embedded.catalog import Collection

Document = dict[str, Any]
SortSpec = list[tuple[str, int]]


def sort_spec(key_or_list: Any, direction: Any = None) -> SortSpec:
    """Normalise pymongo's sort arguments ('f', [('f', 1)], {'f': -1}) to a list."""
    if key_or_list is None:
        return []
    if isinstance(key_or_list, Mapping):
        key_or_list = list(key_or_list.items())
    spec = helpers.create_index_list(key_or_list, direction)
    for field, order in spec:
        if order not in (1, -1):
            raise ValueError(f"sort direction for {field!r} must be 1 or -1, got {order!r}")
    return [(str(field), int(order)) for field, order in spec]


def rows(
    connect: query.Connect,
    collection: Collection,
    filter: Mapping[str, Any],
    sort: Sequence[tuple[str, int]] = (),
    skip: int = 0,
    limit: int = 0,
    stats: query.Stats | None = None,
) -> Iterator[query.Row]:
    """Yield the (record id, document) pairs a query selects, in order."""
    stats = stats if stats is not None else query.Stats()
    plan = planner.plan(collection, filter, sort)
    stats.plans.append(plan)
    unfiltered = plan.exact  # the key ranges already say all the filter says
    in_order = not sort or plan.sorted
    # With nothing to check and nothing to sort, SQLite skips the rows itself (no decoding).
    offset = skip if unfiltered and in_order and len(plan.ranges) <= 1 else 0
    # Read a limit's worth first (a page, one row); batches grow if the filter rejects rows.
    wanted = skip - offset + abs(limit) if limit and in_order else query.SCAN_BATCH
    selected: Iterator[query.Row] = query.scan(connect, collection, plan, stats, offset, wanted)
    if not unfiltered:
        selected = (row for row in selected if documents.match(filter, row[1]))
    if not in_order:
        selected = iter(documents.sort_rows(list(selected), sort))
    stop = None if limit == 0 else skip - offset + abs(limit)
    selected = itertools.islice(selected, skip - offset, stop)
    for row in selected:
        stats.returned += 1
        yield row


class Cursor:
    """The result of find(): lazy until iterated, then read in batches of committed data."""

    def __init__(
        self,
        collection: Callable[[], tuple[query.Connect, Collection | None]],
        filter: Mapping[str, Any],
        projection: Any = None,
        sort: SortSpec | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> None:
        self._collection = collection
        self._filter = filter
        self._projection = projection
        self._sort: SortSpec = sort or []
        self._skip = skip
        self._limit = limit
        self._results: Iterator[Document] | None = None
        self._stats = query.Stats()
        self._closed = False

    def _check_unstarted(self) -> None:
        if self._results is not None:
            raise InvalidOperation("cannot set options after executing query")

    def sort(self, key_or_list: Any, direction: Any = None) -> Cursor:
        """Sort by one field or a list of (field, direction)."""
        self._check_unstarted()
        self._sort = sort_spec(key_or_list, direction)
        return self

    def skip(self, skip: int) -> Cursor:
        """Skip the first `skip` results."""
        if not isinstance(skip, int) or skip < 0:
            raise ValueError("skip must be a non-negative int")
        self._check_unstarted()
        self._skip = skip
        return self

    def limit(self, limit: int) -> Cursor:
        """Return at most `limit` results (0: no limit)."""
        if not isinstance(limit, int):
            raise TypeError("limit must be an int")
        self._check_unstarted()
        self._limit = limit
        return self

    def batch_size(self, batch_size: int) -> Cursor:
        """Accept a batch size; the store reads in batches of its own."""
        return self

    def max_time_ms(self, max_time_ms: int | None) -> Cursor:
        """Accept a time limit; queries on the embedded store are not interrupted."""
        return self

    def _start(self) -> Iterator[Document]:
        if self._results is None:
            connect, collection = self._collection()
            if collection is None:
                self._results = iter(())
            else:
                selected = rows(
                    connect,
                    collection,
                    self._filter,
                    self._sort,
                    self._skip,
                    self._limit,
                    self._stats,
                )
                project = documents.projector(self._projection)
                self._results = (project(doc) for _, doc in selected)
        return self._results

    def __iter__(self) -> Cursor:
        return self

    def __next__(self) -> Document:
        if self._closed:
            raise StopIteration
        return next(self._start())

    def next(self) -> Document:
        """Return the next document."""
        return self.__next__()

    def to_list(self, length: int | None = None) -> list[Document]:
        """Return the remaining documents (at most `length`)."""
        return list(itertools.islice(self, length))

    @property
    def alive(self) -> bool:
        """Tell whether more documents may come."""
        return not self._closed

    def close(self) -> None:
        """Stop reading."""
        self._closed = True

    def explain(self) -> Document:
        """Run the query and report its plan and what it read, shaped like MongoDB's."""
        self._check_unstarted()
        for _ in self._start():
            pass
        plan = self._stats.plans[0] if self._stats.plans else planner.Plan(None)
        winning: Document = {"stage": plan.stage}
        if plan.index is not None:
            winning.update(
                indexName=plan.index.name,
                keyPattern=dict(plan.index.fields),
                direction="backward" if plan.reverse else "forward",
            )
        return {
            "queryPlanner": {"winningPlan": winning},
            "executionStats": {
                "nReturned": self._stats.returned,
                "totalKeysExamined": self._stats.keys_examined,
                "totalDocsExamined": self._stats.docs_examined,
            },
        }

    def __enter__(self) -> Cursor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
