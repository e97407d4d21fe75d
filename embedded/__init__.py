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
  change streams read it with MongoDB's event shapes, resume tokens and errors.
- `collection`, `database`, `client`: the pymongo-shaped surface.

What it does not do raises an error naming it (sessions, multikey and text indexes,
`$out`, `bulk_write`...), rather than returning a silently wrong answer.
"""

from embedded.client import EmbeddedClient
from embedded.engine import MEMORY

__all__ = ["MEMORY", "EmbeddedClient"]
