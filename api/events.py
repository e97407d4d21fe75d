"""The event history: every logged desk event after a given seq, oldest first."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort
from marshmallow import Schema, fields, validate

from api.blueprint import Blueprint
from desks.event_log import EventLog

blp = Blueprint("events", __name__, url_prefix="/api/events", description="Desk event history.")

MAX_LIMIT = 1000


class EventQueryArgsSchema(Schema):
    """Where to start and how many events to return."""

    after = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=2**62),
        metadata={"description": "return events with a seq greater than this"},
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_LIMIT))


class EventSchema(Schema):
    """An event of the log (docs/events.md): a desk event, a `resync` or a `snapshot`."""

    type = fields.String(
        required=True,
        validate=validate.OneOf(
            ["desk_created", "desk_updated", "desk_deleted", "resync", "snapshot", "desk_snapshot"]
        ),
    )
    seq = fields.Integer(required=True, metadata={"minimum": 1})
    at = fields.String(required=True, metadata={"format": "date-time"})
    desk_id = fields.String(metadata={"description": "desk events"})
    version = fields.Integer(metadata={"description": "desk events"})
    desk = fields.Dict(metadata={"description": "desk events"})
    changes = fields.Dict(metadata={"description": "desk_updated, unless truncated"})
    truncated = fields.Boolean(
        metadata={"description": "desk events too large for clients, in reduced form"}
    )
    reason = fields.String(
        metadata={"description": "resync and snapshot: history_lost or invalidated"}
    )


def event_log() -> EventLog:
    """Return the app's event log."""
    log: EventLog = current_app.extensions["desks.events"]
    return log


def known_seq(as_of: int | None) -> int:
    """Return the seq a past registry is asked as of (the head if None), or answer 422 if
    the log cannot tell the registry then (beyond its head, or history lost there)."""
    log = event_log()
    head = log.head()
    seq = head if as_of is None else as_of
    if seq > head:
        abort(422, errors={"query": {"as_of": [f"Beyond the event log's head, seq {head}."]}})
    unknown = log.unknown_state(seq)
    if unknown is not None:
        abort(422, errors={"query": {"as_of": [f"Unknown state: {unknown}."]}})
    return seq


@blp.route("", strict_slashes=False)
class EventHistory(MethodView):
    """The event log."""

    @blp.arguments(EventQueryArgsSchema(), location="query")
    @blp.response(
        200, EventSchema(many=True), headers={"X-Event-Seq": {"schema": {"type": "integer"}}}
    )
    def get(self, args: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """List events after a seq, in order; page on by passing the last seq as `after`."""
        log = event_log()
        events = log.after(args["after"], args["limit"])
        return [event.to_json() for event in events], {"X-Event-Seq": str(log.head())}
