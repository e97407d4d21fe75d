"""The whole registry in one answer: as the store holds it (what a dashboard loads before it
goes live), or as of one seq of the log."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from itertools import chain, islice
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.blueprint import Blueprint
from api.desks import repository
from api.errors import error_response
from api.events import event_log, known_seq
from api.schemas import DeskSchema
from desks.desk import desk_json

blp = Blueprint(
    "registry",
    __name__,
    url_prefix="/api/registry",
    description="Every desk, now or as of one seq, in one answer.",
)

# Desks joined into one chunk of the streamed answer.
CHUNK = 1000
# Folds at once in a process: each builds the whole registry (tens of MB at 100,000 desks)
# and the GIL runs one at a time anyway. Others wait up to FOLD_WAIT_SECONDS, then get 503.
# Answers being sent, folded or live (a chunk of desks in memory each), are bounded by the
# server's threads: the others queue in the server.
REGISTRIES_AT_ONCE = 2
FOLD_WAIT_SECONDS = 30.0
_folding = threading.BoundedSemaphore(REGISTRIES_AT_ONCE)


class RegistryArgsSchema(Schema):
    """Which state of the registry."""

    as_of = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "right after the event with this seq (default: as stored now)"},
    )


@blp.route("", strict_slashes=False)
class Registry(MethodView):
    """The registry, whole."""

    @blp.arguments(RegistryArgsSchema(), location="query")
    @blp.alt_response(503, description="Other registry reads held it for 30 s: Retry-After")
    @blp.response(
        200,
        DeskSchema(many=True),
        headers={
            "X-Event-Seq": {
                "description": "the seq it is as of, or without as_of the log's head read "
                "first: subscribe with after=it",
                "schema": {"type": "integer"},
            },
            "X-Total-Count": {
                "description": "how many desks (with as_of only)",
                "schema": {"type": "integer"},
            },
        },
    )
    def get(self, args: dict[str, Any]) -> Response:
        """Every desk as the store holds it now, oldest first as pages list them; or, with
        `as_of`, as it stood right after that event, in the order they entered the log: the
        same desks as every page of `GET /api/desks?as_of=` together, read from the log once
        (one pass over it, where pages look each desk up)."""
        if "as_of" not in args:
            return _now()
        seq = known_seq(args["as_of"])
        if not _folding.acquire(timeout=FOLD_WAIT_SECONDS):
            return error_response(
                503, "Busy reading the registry for others; try again.", {"Retry-After": "5"}
            )
        try:
            desks = event_log().registry(seq, current_app.json.dumps)
        finally:
            # Not held until the answer is sent: a client that never closes (a test client,
            # a server that drops the response) would keep its turn for good.
            _folding.release()
        headers = {"X-Event-Seq": str(seq), "X-Total-Count": str(len(desks))}
        return Response(_array(desks), mimetype="application/json", headers=headers)


def _now() -> Response:
    """Answer every desk as stored, streamed from one cursor (no fold: no turn to wait for).

    The head is read first, as for a live page: each desk is then at least as new as the
    log says at that seq, so a client that subscribes with after=it and skips versions it
    holds misses nothing. Not one point in time: a write during the read may or may not show,
    and its event follows either way. No total: it would be of another moment.

    The first batch is read here, so that a store that cannot answer gets its 503; one that
    fails later cuts the answer short, an array never closed, which no client takes whole.
    """
    head = event_log().head()
    documents = repository().every()
    first = next(documents, None)
    if first is not None:
        documents = chain((first,), documents)
    dumps = current_app.json.dumps
    desks = (dumps(desk_json(document)) for document in documents)
    return Response(_array(desks), mimetype="application/json", headers={"X-Event-Seq": str(head)})


def _array(desks: Iterable[str]) -> Iterator[str]:
    """Yield the JSON array of these serialized desks in chunks."""
    desks = iter(desks)
    yield "["
    separator = ""
    while chunk := list(islice(desks, CHUNK)):
        yield separator + ",".join(chunk)
        separator = ","
    yield "]"
