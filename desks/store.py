"""Store access: a MongoDB replica set when MONGODB_URI is set, else the embedded store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from desks.settings import Settings
from embedded import EmbeddedClient

Document = dict[str, Any]

DESKS = "desks"


@dataclass(frozen=True)
class Store:
    """A connected client and the desks database, whichever backend serves them."""

    client: MongoClient[Document] | EmbeddedClient
    database: Database[Document]
    kind: str  # "mongodb" or "embedded"

    @property
    def desks(self) -> Collection[Document]:
        """Return the collection of desks, the one the watcher tails."""
        return self.database[DESKS]

    def ping(self) -> None:
        """Raise a pymongo ConnectionFailure unless the store answers."""
        self.client.admin.command("ping")

    def close(self) -> None:
        """Release the client's connections."""
        self.client.close()


def rollback_safe(collection: Collection[Document]) -> Collection[Document]:
    """Return `collection` writing with w:majority and reading majority-committed data only:
    what no failover can roll back (an event a client saw must never be replaced by another
    with the same seq). The embedded store is one node, where every commit is that already:
    its collection is returned as it is."""
    return collection.with_options(
        write_concern=WriteConcern("majority"), read_concern=ReadConcern("majority")
    )


def open_store(settings: Settings, embedded: EmbeddedClient | None = None) -> Store:
    """Connect to MongoDB when settings name a URI, else to `embedded` (or a new one)."""
    if settings.mongodb_uri is not None:
        client: MongoClient[Document] = MongoClient(
            settings.mongodb_uri,
            serverSelectionTimeoutMS=settings.server_selection_timeout_ms,
            connectTimeoutMS=settings.server_selection_timeout_ms,
            appname="desks",
        )
        return Store(client, client[settings.database], "mongodb")
    embedded = embedded or EmbeddedClient(
        settings.embedded_path,
        history_size=settings.embedded_history_size,
        noop_interval=settings.embedded_noop_seconds,
        synchronous=settings.embedded_synchronous,
    )
    # The embedded database duck-types pymongo's: callers see one interface.
    return Store(embedded, cast(Database[Document], embedded[settings.database]), "embedded")
