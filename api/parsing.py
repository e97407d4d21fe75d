"""Request parsing: webargs' Flask parser, hardened against bodies Python's json cannot take."""

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
