"""A MongoClient look-alike over one SQLite file (or `:memory:`), with change streams."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from embedded.catalog import Catalog
from embedded.changestream import EmbeddedChangeStream, Scope
from embedded.database import EmbeddedDatabase
from embedded.engine import MEMORY, Engine
from embedded.oplog import Oplog
from embedded.options import refuse_unsupported
from embedded.session import EmbeddedSession

Document = dict[str, Any]

_WATCH_OPTIONS = (
    "full_document",
    "resume_after",
    "max_await_time_ms",
    "start_at_operation_time",
    "start_after",
    "full_document_before_change",
)


class EmbeddedClient:
    """A MongoClient look-alike whose databases live in one SQLite file, with change streams."""

    def __init__(
        self,
        path: str | os.PathLike[str] = MEMORY,
        history_size: int = 1_000_000,
        noop_interval: float = 10.0,
        synchronous: str = "FULL",
    ) -> None:
        self.engine = Engine(path, synchronous)
        self.catalog = Catalog()
        self.oplog = Oplog(self.engine, history_size, noop_interval)

    def __getitem__(self, name: str) -> EmbeddedDatabase:
        return EmbeddedDatabase(self, name)

    def __repr__(self) -> str:
        return f"EmbeddedClient({self.engine.path!r})"

    def get_database(self, name: str, **_options: Any) -> EmbeddedDatabase:
        """Return the database called `name`."""
        return EmbeddedDatabase(self, name)

    @property
    def admin(self) -> EmbeddedDatabase:
        """Return the admin database (for `command('ping')`)."""
        return EmbeddedDatabase(self, "admin")

    def list_database_names(self, **options: Any) -> list[str]:
        """List databases holding at least one collection."""
        refuse_unsupported(options)
        with self.engine.read() as connection:
            return self.catalog.databases(connection)

    def drop_database(self, name: str, **options: Any) -> None:
        """Drop a database: a drop event per collection, then dropDatabase, in one transaction."""
        refuse_unsupported(options)
        with self.engine.write() as connection:
            for coll in self.catalog.names(connection, name):
                collection = self.catalog.get(connection, name, coll)
                assert collection is not None
                self.catalog.drop(connection, collection)
                self.oplog.append(connection, "drop", name, coll)
            self.oplog.append(connection, "dropDatabase", name, None)

    def start_session(self, **_options: Any) -> EmbeddedSession:
        """Start a session, for multi-document transactions (see `embedded.session`)."""
        return EmbeddedSession(self.engine)

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on every database."""
        return self.open_stream(Scope(), pipeline, options)

    def open_stream(
        self, scope: Scope, pipeline: Sequence[Mapping[str, Any]] | None, options: Mapping[str, Any]
    ) -> EmbeddedChangeStream:
        """Open a change stream on `scope`, accepting pymongo's watch() keyword arguments."""
        known = {k: v for k, v in options.items() if k in _WATCH_OPTIONS}
        refuse_unsupported(
            {k: v for k, v in options.items() if k not in _WATCH_OPTIONS and k != "batch_size"}
        )
        return EmbeddedChangeStream(self.oplog, scope, self._lookup, pipeline, **known)

    def _lookup(self, db: str, coll: str, key: Any) -> Document | None:
        return self[db][coll].find_one({"_id": key})

    def images_enabled(self, db: str, coll: str) -> bool:
        """Tell whether writes to db.coll record pre- and post-images."""
        with self.engine.read() as connection:
            collection = self.catalog.get(connection, db, coll)
        return collection is not None and collection.images

    def close(self) -> None:
        """Close the store's connections; the data stays in the file."""
        self.engine.close()

    def __enter__(self) -> EmbeddedClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
