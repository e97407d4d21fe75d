"""Query execution: the scan that reads a plan's key ranges (or the whole collection) in
batches of committed data, and counts that read no document (`embedded.planner` plans).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import bson

from embedded.catalog import ID, Collection, Index
from embedded.planner import Plan

Document = dict[str, Any]
Row = tuple[int, Document]  # (record id, document)
Connect = Callable[[], AbstractContextManager[sqlite3.Connection]]

SCAN_BATCH = 512
# Key ranges (an $in's values) read in one read transaction before their rows are yielded.
RANGES_PER_READ = 64


@dataclass
class Stats:
    """What a query read, as MongoDB's explain() reports it."""

    keys_examined: int = 0
    docs_examined: int = 0
    returned: int = 0
    plans: list[Plan] = field(default_factory=list)


def scan(
    connect: Connect,
    collection: Collection,
    plan_: Plan,
    stats: Stats,
    offset: int = 0,
    wanted: int = SCAN_BATCH,
) -> Iterator[Row]:
    """Yield (record id, document) in plan order, reading in batches of committed data.

    `offset` rows are skipped by SQLite itself (only for a plan with at most one range); the
    first batch reads `wanted` rows (a limit's worth), later ones more, up to SCAN_BATCH.
    """
    assert offset == 0 or len(plan_.ranges) <= 1
    batches = _batch_sizes(wanted)
    if plan_.index is None:
        yield from _table_scan(connect, collection, stats, offset, batches)
        return
    ranges = list(reversed(plan_.ranges) if plan_.reverse else plan_.ranges)
    query = _IndexQuery(collection, plan_.index, plan_.reverse)
    if len(ranges) == 1:
        low, high = ranges[0]
        yield from _index_scan(connect, query, low, high, stats, offset, batches)
        return
    # Many ranges (an $in: one per value): each costs a query, but not a read transaction of
    # its own; a group shares one, and a range with more rows than a batch goes on alone.
    size = next(batches)  # a limit's worth, from each range
    # With a limit (find_one), a range at a time: the first ones may be all it needs.
    per_read = RANGES_PER_READ if size >= SCAN_BATCH else 1
    for start in range(0, len(ranges), per_read):
        group = ranges[start : start + per_read]
        with connect() as connection:
            found = [(low, high, query.first(connection, low, high, size)) for low, high in group]
        for low, high, rows in found:
            yield from _decoded(rows, stats)
            if len(rows) == size:  # more in this range
                resume = (rows[-1][0], rows[-1][1])
                more = _batch_sizes(size * 4)
                yield from _index_scan(connect, query, low, high, stats, 0, more, resume)


def count(connect: Connect, collection: Collection, plan_: Plan, stats: Stats) -> int:
    """Count the keys in an exact plan's ranges, in SQL, reading no document."""
    assert plan_.exact
    if plan_.index is None or plan_.index is ID:
        select, key = f"SELECT count(*) FROM {collection.table} WHERE 1", "id"
    else:
        select, key = f"SELECT count(*) FROM {plan_.index.table} WHERE 1", "key"
    total = 0
    with connect() as connection:
        for low, high in plan_.ranges or ((b"", None),):
            where, bounds = f" AND {key} >= ?", [low]
            if high is not None:
                where += f" AND {key} < ?"
                bounds.append(high)
            total += int(connection.execute(select + where, bounds).fetchone()[0])
    stats.keys_examined += total
    return total


def _batch_sizes(wanted: int) -> Iterator[int]:
    size = max(1, min(wanted, SCAN_BATCH))
    while True:
        yield size
        size = min(size * 4, SCAN_BATCH)


def _table_scan(
    connect: Connect, collection: Collection, stats: Stats, offset: int, batches: Iterator[int]
) -> Iterator[Row]:
    last = None
    while True:
        batch = next(batches)
        with connect() as connection:
            if last is None:
                rows = connection.execute(
                    f"SELECT rid, doc FROM {collection.table} ORDER BY rid LIMIT ? OFFSET ?",
                    (batch, offset),
                ).fetchall()
            else:
                rows = connection.execute(
                    f"SELECT rid, doc FROM {collection.table} WHERE rid > ? ORDER BY rid LIMIT ?",
                    (last, batch),
                ).fetchall()
        for rid, doc in rows:
            stats.docs_examined += 1
            yield rid, bson.decode(doc)
        if len(rows) < batch:
            return
        last = rows[-1][0]


class _IndexQuery:
    """The SQL that reads one key range of an index (or of the ids) in order, with documents."""

    def __init__(self, collection: Collection, index: Index, reverse: bool) -> None:
        table = collection.table
        if index is ID:
            self.select = f"SELECT id, rid, doc FROM {table} c WHERE "
            self.key, self.rid = "id", "rid"
        else:
            self.select = (
                f"SELECT i.key, i.rid, c.doc FROM {index.table} i JOIN {table} c "
                "ON c.rid = i.rid WHERE "
            )
            self.key, self.rid = "i.key", "i.rid"
        self.reverse = reverse
        direction = "DESC" if reverse else "ASC"
        self.order = f" ORDER BY {self.key} {direction}, {self.rid} {direction} LIMIT ?"

    def first(
        self,
        connection: sqlite3.Connection,
        low: bytes,
        high: bytes | None,
        batch: int,
        offset: int = 0,
    ) -> list[Any]:
        """Return the first `batch` rows (key, rid, doc) of the range, past `offset`."""
        where, bounds = f"{self.key} >= ?", [low]
        if high is not None:
            where, bounds = f"{where} AND {self.key} < ?", [low, high]
        return connection.execute(
            self.select + where + self.order + " OFFSET ?", (*bounds, batch, offset)
        ).fetchall()

    def next(
        self,
        connection: sqlite3.Connection,
        low: bytes,
        high: bytes | None,
        batch: int,
        resume: tuple[bytes, int],
    ) -> list[Any]:
        """Return the `batch` rows of the range that follow the row `resume` (key, rid)."""
        # The row `resume` replaces the bound on its side (it lies within the range): given
        # both, SQLite seeks by the range's bound and steps over every row already read, so
        # each batch cost more than the one before (a whole scan was quadratic).
        row = f"({self.key}, {self.rid})"
        if self.reverse:
            where, bounds = f"{self.key} >= ? AND {row} < (?, ?)", [low, *resume]
        elif high is None:
            where, bounds = f"{row} > (?, ?)", [*resume]
        else:
            where, bounds = f"{row} > (?, ?) AND {self.key} < ?", [*resume, high]
        return connection.execute(self.select + where + self.order, (*bounds, batch)).fetchall()


def _index_scan(
    connect: Connect,
    query: _IndexQuery,
    low: bytes,
    high: bytes | None,
    stats: Stats,
    offset: int,
    batches: Iterator[int],
    resume: tuple[bytes, int] | None = None,
) -> Iterator[Row]:
    while True:
        batch = next(batches)
        with connect() as connection:
            if resume is None:
                rows = query.first(connection, low, high, batch, offset)
            else:
                rows = query.next(connection, low, high, batch, resume)
        yield from _decoded(rows, stats)
        if len(rows) < batch:
            return
        resume = (rows[-1][0], rows[-1][1])


def _decoded(rows: list[Any], stats: Stats) -> Iterator[Row]:
    """Yield (record id, document) of index rows (key, rid, doc), counting what was read."""
    for _, record, doc in rows:
        stats.keys_examined += 1
        stats.docs_examined += 1
        yield record, bson.decode(doc)
