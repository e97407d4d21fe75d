"""A Database look-alike: its collections, the commands desks needs, database change streams."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymongo.errors import CollectionInvalid, OperationFailure

from embedded.changestream import EmbeddedChangeStream, Scope
from embedded.collection import EmbeddedCollection
from embedded.options import refuse_unsupported

if TYPE_CHECKING:
    from embedded.client import EmbeddedClient

Document = dict[str, Any]

_HELLO = {"ping", "hello", "isMaster", "ismaster"}


class EmbeddedDatabase:
    """A database of the embedded store."""

    def __init__(self, client: EmbeddedClient, name: str) -> None:
        self.client = client
        self.name = name

    def __getitem__(self, name: str) -> EmbeddedCollection:
        return EmbeddedCollection(self, name)

    def __getattr__(self, name: str) -> EmbeddedCollection:
        if name.startswith("_"):
            raise AttributeError(name)
        return EmbeddedCollection(self, name)

    def __repr__(self) -> str:
        return f"EmbeddedDatabase({self.name!r})"

    def get_collection(self, name: str, **_options: Any) -> EmbeddedCollection:
        """Return the collection called `name`."""
        return EmbeddedCollection(self, name)

    def list_collection_names(self, **options: Any) -> list[str]:
        """List the collections that exist."""
        refuse_unsupported(options)
        with self.client.engine.read() as connection:
            return self.client.catalog.names(connection, self.name)

    def list_collections(
        self, filter: Mapping[str, Any] | None = None, **options: Any
    ) -> Iterator[dict[str, Any]]:
        """Describe the collections as MongoDB's listCollections does (name, type, options);
        `filter` may name one (`{"name": ...}`)."""
        refuse_unsupported(options)
        wanted = (filter or {}).get("name")
        if set(filter or {}) - {"name"} or not (wanted is None or isinstance(wanted, str)):
            raise OperationFailure("listCollections filters only on a name here", 2)
        catalog = self.client.catalog
        with self.client.engine.read() as connection:
            names = catalog.names(connection, self.name)
            found = [catalog.get(connection, self.name, name) for name in names]
        for collection in found:
            if collection is None or wanted not in (None, collection.name):
                continue
            images = (
                {"changeStreamPreAndPostImages": {"enabled": True}} if collection.images else {}
            )
            yield {"name": collection.name, "type": "collection", "options": images}

    def create_collection(
        self,
        name: str,
        changeStreamPreAndPostImages: Mapping[str, Any] | None = None,  # noqa: N803
        **options: Any,
    ) -> EmbeddedCollection:
        """Create a collection, optionally recording pre- and post-images for change streams."""
        refuse_unsupported(options)
        images = bool(changeStreamPreAndPostImages and changeStreamPreAndPostImages["enabled"])
        catalog = self.client.catalog
        with self.client.engine.write() as connection:
            if catalog.get(connection, self.name, name) is not None:
                raise CollectionInvalid(f"collection {name} already exists")
            catalog.create(connection, self.name, name, images)
        return EmbeddedCollection(self, name)

    def command(self, command: str | Mapping[str, Any], value: Any = 1, **kwargs: Any) -> Document:
        """Run `ping`/`hello` or `collMod` (pre- and post-images); others raise CommandNotFound."""
        spec = {command: value, **kwargs} if isinstance(command, str) else dict(command)
        name = next(iter(spec))
        if name in _HELLO:
            self.list_collection_names()  # answers only while the store can be read
            reply: Document = {"ok": 1.0}
            if name != "ping":
                reply.update(isWritablePrimary=True, ismaster=True)
            return reply
        if name == "collMod":
            self._coll_mod(spec)
            return {"ok": 1.0}
        raise OperationFailure(
            f"no such command: '{name}' (the embedded store runs ping, hello and collMod)",
            59,
            {"codeName": "CommandNotFound"},
        )

    def _coll_mod(self, spec: Mapping[str, Any]) -> None:
        unknown = set(spec) - {"collMod", "changeStreamPreAndPostImages"}
        if unknown:
            raise NotImplementedError(
                f"collMod {', '.join(sorted(unknown))} is not supported by the embedded store"
            )
        catalog = self.client.catalog
        with self.client.engine.write() as connection:
            collection = catalog.get(connection, self.name, spec["collMod"])
            if collection is None:
                raise OperationFailure("ns does not exist", 26, {"codeName": "NamespaceNotFound"})
            images = spec.get("changeStreamPreAndPostImages")
            if images is not None:
                catalog.set_images(connection, collection, bool(images["enabled"]))

    def drop_collection(self, name: str, **options: Any) -> None:
        """Drop a collection, emitting its drop event."""
        self[name].drop(**options)

    def watch(
        self, pipeline: Sequence[Mapping[str, Any]] | None = None, **options: Any
    ) -> EmbeddedChangeStream:
        """Open a change stream on this database."""
        return self.client.open_stream(Scope(self.name), pipeline, options)
