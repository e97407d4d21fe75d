"""flask-smorest's Blueprint, adjusted: sturdier JSON parsing, a truthful pagination header doc."""

from __future__ import annotations

import json
from typing import Any

import flask
import flask_smorest
from webargs.flaskparser import FlaskParser


class JsonBodyParser(FlaskParser):
    """A FlaskParser that answers 400, not 500, to JSON nested deeper than Python recurses."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError:
            error = json.JSONDecodeError("nested too deeply", "", 0)
            self._handle_invalid_json_error(error, req)


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, parsing arguments with JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # The header carries JSON text; documenting it as an object schema would promise the
        # OpenAPI "simple" serialisation (k,v,k,v) instead, and clients would parse it wrongly.
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata as JSON: total, total_pages, first_page, "
            "last_page, page, previous_page, next_page",
            "schema": {"type": "string"},
        }
