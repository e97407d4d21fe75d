"""The embedded store: a MongoDB-shaped document store with change streams, on SQLite.

It serves pymongo's interface (`EmbeddedClient()["db"]["coll"]`, `insert_one`, `find`,
`find_one_and_update`, `watch()` ...) so that code written for a MongoDB replica set runs
unchanged on a laptop with nothing installed, and many processes can share one file.

How it is built, one module per idea:

- `engine`: SQLite in WAL mode; one transaction per write (BEGIN IMMEDIATE), consistent
  read snapshots, a pool of reader connections, wake-ups when any process commits.
- `catalog`: collections and indexes, each its own table (`c<id>`, `i<id>`).
- `keys`: BSON values as bytes that sort in MongoDB's order, so SQLite's indexes sort, range
  and enforce uniqueness exactly as MongoDB's do.
- `query` and `cursor`: a planner that picks an index for a filter and sort, scans in batches,
  and re-checks every document with mongomock's matcher; pymongo's Cursor API on top.
- `documents`: mongomock's update operators, projections and sort order, on one document.
- `oplog` and `changestream`: every write appends an oplog entry in its own transaction;
  change streams read it with MongoDB's event shapes, resume tokens and errors; `noops`
  writes the idle no-ops that keep an empty poll's token moving.
- `session`: multi-document transactions (`with_transaction`), each one SQLite write
  transaction, aborted as a whole by a failed write as on MongoDB.
- `collection`, `database`, `client`: the pymongo-shaped surface.

Why a change stream cannot skip a commit:

1. Positions are commit order. An oplog entry is written in the transaction of its write, and
   SQLite lets one writer at a time hold the file (BEGIN IMMEDIATE, every process): the
   AUTOINCREMENT position a write takes is greater than every position committed before it,
   and a rolled-back write leaves no entry behind.
2. A stream only moves to a position one snapshot proved. Each fetch reads, in one read
   transaction, the entries after its position and the head; the position moves to an entry
   it returns or, when none in scope is left, to that same snapshot's head. A write committed
   after the snapshot has a greater position, so the next fetch reads it.
3. A read never writes. Idle no-ops come from a writer thread of their own (`noops`), as a
   primary's do; a stream never appends one and then reads where it landed.
4. The catalog a write uses is the one its own transaction read (`catalog`), so no write
   can miss an index another thread created, whatever older snapshot that thread holds.

The same claims are tested by forcing the interleavings that once broke them
(`tests/embedded/test_interleavings.py`) and by a model of the stream
(`tests/embedded/test_stream_model.py`).

What it does not do raises an error naming it (multikey and text indexes,
`$out`, `bulk_write`...), rather than returning a silently wrong answer.
"""

from embedded.client import EmbeddedClient
from embedded.engine import MEMORY

__all__ = ["MEMORY", "EmbeddedClient"]
