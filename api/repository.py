"""Desk reads and writes against the store; every write is one atomic MongoDB operation."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from bson import Decimal128, ObjectId
from pymongo import ASCENDING, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import WriteError

from desks.desk import utc_now
from desks.events import version_of

Document = dict[str, Any]

# Judging a write again because another changed the desk in between: each retry means some
# other write succeeded, so this bound is only reached under sustained contention on one desk.
UPDATE_ATTEMPTS = 10
_ABSENT = object()
# Desks read at once by `every`: memory stays bounded however many there are.
BATCH = 1000
TYPE_MISMATCH = 14
_INTEGER = re.compile(r"-?[0-9]{1,18}")


class DeskNotFound(LookupError):
    """No desk has this id."""


class DeskContended(Exception):
    """Other writes changed the desk each time this one was judged: it was not applied."""


class VersionNotANumber(Exception):
    """The desk's version holds no number (written around the API): it cannot be bumped."""


class VersionMismatch(Exception):
    """The desk exists, but not at any of the versions the client expected (If-Match)."""

    def __init__(self, desk_id: str, current: int) -> None:
        super().__init__(desk_id, current)
        self.current = current  # the version it is at: the client's 412 names it


def stored_ids(desk_id: str) -> list[Any]:
    """Return the `_id` values a desk id from a URL may stand for.

    The API's desks have ObjectIds, shown as 24 hex digits; desks written around the API may
    have a string or integer `_id`, shown as text (`desks.bson_json.key_text`).
    """
    candidates: list[Any] = [desk_id]
    if len(desk_id) == 24 and ObjectId.is_valid(desk_id):
        candidates.append(ObjectId(desk_id))
    if _INTEGER.fullmatch(desk_id):
        candidates.append(int(desk_id))
    return candidates


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

    def create(
        self,
        fields: Mapping[str, Any],
        desk_id: ObjectId | None = None,
        session: ClientSession | None = None,
    ) -> Document:
        """Store a new desk at version 1 (under `desk_id` if given, in `session`'s transaction
        if given) and return it.

        Raises DuplicateKeyError when a desk with that id exists.
        """
        now = utc_now()
        document: Document = {**fields, "version": 1, "created_at": now, "updated_at": now}
        if desk_id is not None:
            document = {"_id": desk_id, **document}
        self._desks.insert_one(document, session=session)
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

    def every(self) -> Iterator[Document]:
        """Yield every desk, oldest first as pages list them, a batch read at a time."""
        self.ensure_indexes()
        order = [("created_at", ASCENDING), ("_id", ASCENDING)]
        return self._desks.find({}).sort(order).batch_size(BATCH)

    def get(self, desk_id: str) -> Document:
        """Return the desk with this id."""
        document = self._desks.find_one({"_id": {"$in": stored_ids(desk_id)}})
        if document is None:
            raise DeskNotFound(desk_id)
        return document

    def update(
        self, desk_id: str, fields: Mapping[str, Any], versions: list[int] | None
    ) -> Document:
        """Set fields and bump the version, only if the desk is at one of `versions` (if given).

        A write whose fields all equal the stored ones changes nothing and returns the desk as
        it is: same version, no event (a retried PUT is not a second change).
        """
        update = {"$set": {**fields, "updated_at": utc_now()}, "$inc": {"version": 1}}
        # Only a desk that would change: one filtered write, so "equal" is judged at the write.
        # $ne alone would call an array holding the value equal to it: arrays always differ.
        differs = [{name: {"$ne": value}} for name, value in fields.items()]
        differs += [{name: {"$type": "array"}} for name in fields]
        for _ in range(UPDATE_ATTEMPTS):
            try:
                document = self._desks.find_one_and_update(
                    {**self._filter(desk_id, versions), "$or": differs},
                    update,
                    return_document=ReturnDocument.AFTER,
                )
            except WriteError as error:
                if error.code == TYPE_MISMATCH:  # $inc of a version that is no number
                    raise VersionNotANumber(desk_id) from None
                raise
            if document is not None:
                return document
            current = self.get(desk_id)  # raises DeskNotFound when absent
            if versions is not None and current.get("version") not in versions:
                raise VersionMismatch(desk_id, version_of(current))
            if all(_same(current.get(name, _ABSENT), value) for name, value in fields.items()):
                return current
            # Another write changed the desk between the two reads: judge again.
        raise DeskContended(desk_id)

    def delete(self, desk_id: str, versions: list[int] | None) -> Document:
        """Delete the desk, only if it is at one of `versions` (if given), and return it."""
        document = self._desks.find_one_and_delete(self._filter(desk_id, versions))
        return self._found(desk_id, document)

    @staticmethod
    def _filter(desk_id: str, versions: list[int] | None) -> Document:
        # One filtered write on _id + version: two writers holding the same ETag cannot both win.
        query: Document = {"_id": {"$in": stored_ids(desk_id)}}
        if versions is not None:
            query["version"] = {"$in": versions}
        return query

    def _found(self, desk_id: str, document: Document | None) -> Document:
        if document is not None:
            return document
        current = self.get(desk_id)  # raises DeskNotFound when absent
        raise VersionMismatch(desk_id, version_of(current))


def _same(stored: Any, value: Any) -> bool:
    """Tell whether MongoDB's $ne would call these equal (numbers compare by value)."""
    if isinstance(stored, bool) or isinstance(value, bool):
        return type(stored) is type(value) and stored == value
    if isinstance(stored, Decimal128):
        stored = stored.to_decimal()
    if isinstance(stored, int | float | Decimal) and isinstance(value, int | float):
        return bool(stored == value)
    return type(stored) is type(value) and stored == value
