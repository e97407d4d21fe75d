"""The whole registry as of one seq, in one answer: what a dashboard loads before it goes live."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from marshmallow import Schema, fields, validate

from api.blueprint import Blueprint
from api.errors import error_response
from api.events import event_log, known_seq
from api.schemas import DeskSchema

blp = Blueprint(
    "registry",
    __name__,
    url_prefix="/api/registry",
    description="Every desk as of one seq, in one answer.",
)

# Desks joined into one chunk of the streamed answer.
CHUNK = 1000
# Folds at once in a process: each builds the whole registry (tens of MB at 100,000 desks)
# and the GIL runs one at a time anyway. Others wait up to FOLD_WAIT_SECONDS, then get 503
# (the dashboard then reads pages). Answers being sent are bounded by the server's threads.
REGISTRIES_AT_ONCE = 2
FOLD_WAIT_SECONDS = 30.0
_folding = threading.BoundedSemaphore(REGISTRIES_AT_ONCE)


class RegistryArgsSchema(Schema):
    """Which state of the registry."""

    as_of = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "right after the event with this seq (default: the log's head)"},
    )


@blp.route("", strict_slashes=False)
class Registry(MethodView):
    """The registry, whole."""

    @blp.arguments(RegistryArgsSchema, location="query")
    @blp.alt_response(503, description="Other registry reads held it for 30 s: Retry-After")
    @blp.response(
        200,
        DeskSchema(many=True),
        headers={
            "X-Event-Seq": {
                "description": "the seq it is as of: subscribe with after=it",
                "schema": {"type": "integer"},
            },
            "X-Total-Count": {"description": "how many desks", "schema": {"type": "integer"}},
        },
    )
    def get(self, args: dict[str, Any]) -> Response:
        """Every desk as it stood right after event `as_of`, in the order they entered the
        log: the same desks as every page of `GET /api/desks?as_of=` together, read from the
        log once (one pass over it, where pages look each desk up)."""
        seq = known_seq(args.get("as_of"))
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


def _array(desks: list[str]) -> Iterator[str]:
    """Yield the JSON array of these serialized desks in chunks."""
    yield "["
    for start in range(0, len(desks), CHUNK):
        yield ("," if start else "") + ",".join(desks[start : start + CHUNK])
    yield "]"
