"""The desks resource: create, list, read, replace, patch and delete desks."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from flask import Response, current_app, g, request, url_for
from flask.views import MethodView
from flask_smorest import abort
from flask_smorest.pagination import PaginationParameters
from pymongo.client_session import ClientSession

from api.blueprint import Blueprint
from api.events import EventQueryArgsSchema, EventSchema, event_log, known_seq
from api.idempotency import IdempotencyKeys, KeyLost, KeyReused, Outcome, fingerprint, parse_key
from api.repository import (
    DeskContended,
    DeskNotFound,
    DeskRepository,
    VersionMismatch,
    VersionNotANumber,
)
from api.schemas import DeskCreateSchema, DeskPatchSchema, DeskQueryArgsSchema, DeskSchema
from desks.desk import desk_json, etag
from desks.events import version_of

blp = Blueprint("desks", __name__, url_prefix="/api/desks", description="Desks (sizes in cm).")

EVENT_SEQ = {
    "description": "Head seq of the event log when the list was read: subscribe with after=it.",
    "schema": {"type": "integer"},
}
CREATED_HEADERS = {
    "Location": {"schema": {"type": "string"}},
    "ETag": {"schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "true when this is the stored answer to an earlier request with the key",
        "schema": {"type": "string"},
    },
}
IDEMPOTENCY_KEY = {
    "in": "header",
    "name": "Idempotency-Key",
    "description": "Any unique string (a UUID): a retry with the same key and body gets the "
    "first answer and creates nothing; the same key with another body is a 422. Kept for "
    "DESKS_IDEMPOTENCY_TTL_SECONDS (24 h).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}
NEXT = {
    "description": 'With as_of, while more desks follow: <the next page\'s URL>; rel="next" '
    "(a cursor, `after`: no page is read twice however many there are)",
    "schema": {"type": "string"},
}
# A client that reads a whole registry as of one seq page by page: large pages, few trips.
MAX_PAGE_SIZE = 1000
IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "description": "Strong ETag(s) of the version you hold; 412 if the desk has moved on.",
    "schema": {"type": "string"},
}


def repository() -> DeskRepository:
    """Return the repository of the app's store."""
    repo: DeskRepository = current_app.extensions["desks.repository"]
    return repo


def expected_versions() -> list[int] | None:
    """Return the versions named by If-Match, or None when any version will do."""
    if not request.if_match or request.if_match.star_tag:  # absent, empty, or *
        return None
    tags = request.if_match.as_set(include_weak=False)
    # Werkzeug yields None for an empty tag (""); no malformed tag can match a version.
    return [
        int(t) for t in tags if isinstance(t, str) and t.isascii() and t.isdigit() and len(t) <= 18
    ]


def _with_etag(
    document: dict[str, Any], status: int = 200
) -> tuple[dict[str, Any], int, dict[str, str]]:
    return desk_json(document), status, _etag_header(version_of(document))


def _etag_header(version: int) -> dict[str, str]:
    # A desk written around the API without an integer version has no tag to match.
    return {"ETag": etag(version)} if version > 0 else {}


@blp.route("", strict_slashes=False)
class DeskCollection(MethodView):
    """The collection of desks."""

    # Schema instances, not classes, here and below: given a class, webargs builds a schema
    # for every request (a deep copy of its fields: 5% of the API's samples in a profile).
    @blp.arguments(DeskQueryArgsSchema(), location="query")
    @blp.response(200, DeskSchema(many=True), headers={"X-Event-Seq": EVENT_SEQ, "Link": NEXT})
    @blp.paginate(max_page_size=MAX_PAGE_SIZE)
    def get(
        self, args: dict[str, Any], pagination_parameters: PaginationParameters
    ) -> tuple[list[dict[str, Any]] | Response, dict[str, str]]:
        """List desks, oldest first, optionally filtered by name; `as_of` for the past."""
        if "as_of" in args or "after" in args:
            return _as_of(args, pagination_parameters)
        # Read the head first: the snapshot is then at least as new as it, so a dashboard that
        # subscribes with after=<head> and skips versions it has misses nothing.
        head = event_log().head()
        documents, total = repository().page(
            args.get("name"), pagination_parameters.first_item, pagination_parameters.page_size
        )
        pagination_parameters.item_count = total
        return [desk_json(document) for document in documents], {"X-Event-Seq": str(head)}

    @blp.arguments(DeskCreateSchema())
    @blp.response(201, DeskSchema, headers=CREATED_HEADERS)
    @blp.alt_response(409, description="The Idempotency-Key expired and was used again meanwhile")
    @blp.doc(parameters=[IDEMPOTENCY_KEY])
    def post(self, fields: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Create a desk; with an Idempotency-Key, at most once however often it is retried."""
        raw_key = request.headers.get("Idempotency-Key")
        if raw_key is None:
            outcome = _created(repository().create(fields), replayed=False)
        else:
            outcome = _create_once(raw_key, fields)
        headers = dict(outcome.headers)
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return outcome.body, outcome.status, headers


@blp.route("/<desk_id>", strict_slashes=False)
class DeskItem(MethodView):
    """One desk."""

    @blp.response(200, DeskSchema)
    @blp.alt_response(304, description="Not modified (If-None-Match)")
    @blp.alt_response(404, description="No such desk")
    def get(self, desk_id: str) -> Any:
        """Read a desk."""
        document = _get_or_404(desk_id)
        # RFC 9110 13.1.2: If-None-Match compares weakly, so W/"1" matches version 1 too.
        version = version_of(document)
        if version > 0 and request.if_none_match.contains_weak(str(version)):
            return Response(status=304, headers=_etag_header(version))
        return _with_etag(document)

    @blp.arguments(DeskCreateSchema())
    @blp.response(200, DeskSchema)
    @blp.alt_response(404, description="No such desk")
    @blp.alt_response(412, description="If-Match names a version the desk no longer has")
    @blp.alt_response(409, description="Other writes kept changing the desk: retry")
    @blp.doc(parameters=[IF_MATCH])
    def put(
        self, fields: dict[str, Any], desk_id: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Replace a desk's name, width and height."""
        return _with_etag(_update(desk_id, fields))

    @blp.arguments(DeskPatchSchema())
    @blp.response(200, DeskSchema)
    @blp.alt_response(404, description="No such desk")
    @blp.alt_response(412, description="If-Match names a version the desk no longer has")
    @blp.alt_response(409, description="Other writes kept changing the desk: retry")
    @blp.doc(parameters=[IF_MATCH])
    def patch(
        self, fields: dict[str, Any], desk_id: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """Change some of a desk's fields."""
        return _with_etag(_update(desk_id, fields))

    @blp.response(204)
    @blp.alt_response(404, description="No such desk")
    @blp.alt_response(412, description="If-Match names a version the desk no longer has")
    @blp.doc(parameters=[IF_MATCH])
    def delete(self, desk_id: str) -> None:
        """Delete a desk."""
        try:
            repository().delete(desk_id, expected_versions())
        except DeskNotFound:
            _not_found(desk_id)
        except VersionMismatch as mismatch:
            _precondition_failed(mismatch)


@blp.route("/<desk_id>/events", strict_slashes=False)
class DeskTimeline(MethodView):
    """One desk's history."""

    @blp.arguments(EventQueryArgsSchema(), location="query")
    @blp.response(200, EventSchema(many=True), headers={"X-Event-Seq": EVENT_SEQ})
    @blp.alt_response(404, description="The event log has never seen this desk")
    def get(
        self, args: dict[str, Any], desk_id: str
    ) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """List one desk's events in seq order, a deleted desk's too; page on with `after`."""
        log = event_log()
        head = log.head()
        events = log.of_desk(desk_id, args["after"], args["limit"])
        if not events and not log.knows(desk_id):
            abort(404, message=f"The event log has no desk with id {desk_id!r}.")
        return [event.to_json() for event in events], {"X-Event-Seq": str(head)}


def _as_of(
    args: dict[str, Any], pagination: PaginationParameters
) -> tuple[Response, dict[str, str]]:
    seq, name, after = known_seq(args.get("as_of")), args.get("name"), args.get("after")
    page = event_log().as_of(seq, name, pagination.first_item, pagination.page_size, after)
    pagination.item_count = page.total
    pagination.cursor = after  # X-Pagination then says only the total (Blueprint)
    headers = {"X-Event-Seq": str(seq)}
    if page.next is not None:
        query = {"as_of": seq, "after": page.next, "page_size": pagination.page_size}
        if name is not None:
            query["name"] = name
        headers["Link"] = f'<{url_for("desks.DeskCollection", **query)}>; rel="next"'
    # The log holds each desk as DeskSchema shows it (desk_json): dumping 1,000 of them again
    # took a fifth of a page's time.
    return Response(current_app.json.dumps(page.desks), mimetype="application/json"), headers


def _created(document: dict[str, Any], replayed: bool) -> Outcome:
    body = desk_json(document)
    location = url_for("desks.DeskItem", desk_id=body["id"])
    return Outcome(201, body, {"Location": location, **_etag_header(document["version"])}, replayed)


def _create_once(raw_key: str, fields: dict[str, Any]) -> Outcome:
    key = parse_key(raw_key)
    if key is None:
        abort(
            422,
            errors={"headers": {"Idempotency-Key": ["Give 1-255 printable ASCII characters."]}},
        )
    keys: IdempotencyKeys = current_app.extensions["desks.idempotency"]

    def create(desk_id: ObjectId, session: ClientSession) -> Outcome:
        return _created(repository().create(fields, desk_id, session), replayed=False)

    try:
        # The validated fields, not the raw text: 180 and 180.0 ask for the same desk.
        return keys.create_once(_subject(), str(key), fingerprint(fields), create)
    except KeyReused:
        abort(
            422,
            message="This Idempotency-Key was used with another request body.",
            errors={"headers": {"Idempotency-Key": ["Used before with another body."]}},
        )
    except KeyLost:
        abort(
            409,
            message="This Idempotency-Key expired and was used again while this request ran: "
            "nothing was created. Retry to get the answer stored for the key.",
        )
    raise AssertionError("unreachable: abort raises")


def _subject() -> str:
    """Return who the request's token names: keys of one caller are not another's."""
    grant = g.get("grant")
    return "" if grant is None or grant.subject is None else f"sub:{grant.subject}"


def _get_or_404(desk_id: str) -> dict[str, Any]:
    try:
        return repository().get(desk_id)
    except DeskNotFound:
        abort(404, message=f"No desk with id {desk_id!r}.")
        raise  # unreachable: abort raises


def _update(desk_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    try:
        return repository().update(desk_id, fields, expected_versions())
    except DeskNotFound:
        _not_found(desk_id)
        raise
    except VersionMismatch as mismatch:
        _precondition_failed(mismatch)
        raise
    except DeskContended:
        abort(409, message="The desk kept changing while this write was judged; retry it.")
        raise
    except VersionNotANumber:
        abort(
            409,
            message="This desk's version is not a number (it was written around the API): "
            "it cannot be changed through the API.",
        )
        raise


def _not_found(desk_id: str) -> None:
    if request.if_match:
        # RFC 9110 13.1.1: If-Match (even *) is false when there is no current representation.
        abort(412, message=f"No desk with id {desk_id!r}: If-Match cannot hold.")
    abort(404, message=f"No desk with id {desk_id!r}.")


def _precondition_failed(mismatch: VersionMismatch) -> None:
    abort(
        412,
        message=f"The desk is at version {mismatch.current}, not a version If-Match names.",
        headers=_etag_header(mismatch.current),
    )
