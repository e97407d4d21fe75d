"""Desk reads and writes against the store; every write is one atomic MongoDB operation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.collection import Collection

from desks.desk import utc_now

Document = dict[str, Any]


class DeskNotFound(LookupError):
    """No desk has this id."""


class VersionMismatch(Exception):
    """The desk exists, but not at any of the versions the client expected (If-Match)."""

    def __init__(self, desk_id: str, current: int) -> None:
        super().__init__(desk_id, current)
        self.current = current  # the version it is at: the client's 412 names it


def object_id(desk_id: str) -> ObjectId:
    """Parse a desk id; a malformed one is simply a desk that does not exist."""
    if not ObjectId.is_valid(desk_id) or len(desk_id) != 24:
        raise DeskNotFound(desk_id)
    return ObjectId(desk_id)


class DeskRepository:
    """The desks collection, as the API uses it."""

    def __init__(self, collection: Collection[Document]) -> None:
        self._desks = collection
        self._indexed = False

    def ensure_indexes(self) -> None:
        """Create the index that serves list pages in order (idempotent; once per process)."""
        if not self._indexed:
            self._desks.create_index(
                [("created_at", ASCENDING), ("_id", ASCENDING)], name="created_at_id"
            )
            self._indexed = True

    def create(self, fields: Mapping[str, Any], desk_id: ObjectId | None = None) -> Document:
        """Store a new desk at version 1 (under `desk_id` if given) and return it.

        Raises DuplicateKeyError when a desk with that id exists.
        """
        now = utc_now()
        document: Document = {**fields, "version": 1, "created_at": now, "updated_at": now}
        if desk_id is not None:
            document = {"_id": desk_id, **document}
        self._desks.insert_one(document)
        return document

    def page(self, name: str | None, skip: int, limit: int) -> tuple[list[Document], int]:
        """Return one page of desks, oldest first, and how many match in all."""
        self.ensure_indexes()  # here, not at start-up: the API starts while MongoDB is down
        query: Document = {}
        if name is not None:
            # re.escape: the filter is a literal substring, never a regex the client wrote.
            query["name"] = {"$regex": re.escape(name), "$options": "i"}
        total = self._desks.count_documents(query)
        if skip >= total:
            return [], total  # also keeps absurd page numbers away from MongoDB's int64 skip
        cursor = self._desks.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        return list(cursor.skip(skip).limit(limit)), total

    def get(self, desk_id: str) -> Document:
        """Return the desk with this id."""
        document = self._desks.find_one({"_id": object_id(desk_id)})
        if document is None:
            raise DeskNotFound(desk_id)
        return document

    def update(
        self, desk_id: str, fields: Mapping[str, Any], versions: list[int] | None
    ) -> Document:
        """Set fields and bump the version, only if the desk is at one of `versions` (if given)."""
        update = {"$set": {**fields, "updated_at": utc_now()}, "$inc": {"version": 1}}
        document = self._desks.find_one_and_update(
            self._filter(desk_id, versions), update, return_document=ReturnDocument.AFTER
        )
        return self._found(desk_id, document)

    def delete(self, desk_id: str, versions: list[int] | None) -> Document:
        """Delete the desk, only if it is at one of `versions` (if given), and return it."""
        document = self._desks.find_one_and_delete(self._filter(desk_id, versions))
        return self._found(desk_id, document)

    @staticmethod
    def _filter(desk_id: str, versions: list[int] | None) -> Document:
        # One filtered write on _id + version: two writers holding the same ETag cannot both win.
        query: Document = {"_id": object_id(desk_id)}
        if versions is not None:
            query["version"] = {"$in": versions}
        return query

    def _found(self, desk_id: str, document: Document | None) -> Document:
        if document is not None:
            return document
        current = self.get(desk_id)  # raises DeskNotFound when absent
        raise VersionMismatch(desk_id, int(current["version"]))
