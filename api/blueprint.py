"""flask-smorest's Blueprint, adjusted: strict, total JSON parsing, a truthful pagination doc."""

from __future__ import annotations

import json
import math
from typing import Any

import flask
import flask_smorest
from webargs.core import missing
from webargs.flaskparser import FlaskParser, is_json_request

# Integers with more digits than this are beyond any field's range: no need to convert them
# (Python refuses to past 4,300 digits, and converting is quadratic before that).
MAX_INTEGER_DIGITS = 30


def _integer(text: str) -> int | float:
    if len(text.lstrip("-")) <= MAX_INTEGER_DIGITS:
        return int(text)
    return -math.inf if text.startswith("-") else math.inf  # out of range, as 1e400 is


class JsonBodyParser(FlaskParser):
    """A FlaskParser that answers 400, never 500, to any body that is not JSON.

    A number of any size parses (huge ones as infinities; NaN and Infinity, which Python
    reads too, likewise), so that fields refuse them with a 422 naming themselves; nesting
    deeper than Python recurses is a 400.
    """

    def _raw_load_json(self, req: flask.Request) -> Any:
        # Decoding and syntax errors propagate to load_json, which answers 400 (or treats an
        # empty body as no body); anything else json.loads raises is made one of them.
        if not is_json_request(req):
            return missing
        text = req.get_data(cache=True).decode("utf-8")
        try:
            return json.loads(text, parse_int=_integer)
        except json.JSONDecodeError:
            raise
        except (ValueError, RecursionError) as error:
            raise json.JSONDecodeError(f"unreadable JSON: {error}", text[:100] or " ", 0) from None


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint, parsing arguments with JsonBodyParser."""

    ARGUMENTS_PARSER = JsonBodyParser()

    def _set_pagination_metadata(
        self, page_params: Any, result: Any, headers: Any
    ) -> tuple[Any, Any]:
        # Pages read by cursor count from the cursor, so page numbers of the whole list would
        # name pages that are not there: such a page says only how many there are in all.
        if getattr(page_params, "cursor", None) is not None:
            headers = {} if headers is None else headers
            headers[self.PAGINATION_HEADER_NAME] = json.dumps({"total": page_params.item_count})
            return result, headers
        return super()._set_pagination_metadata(page_params, result, headers)  # type: ignore[no-any-return]

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # The header carries JSON text; documenting it as an object schema would promise the
        # OpenAPI "simple" serialisation (k,v,k,v) instead, and clients would parse it wrongly.
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata as JSON: total, total_pages, first_page, "
            "last_page, page, previous_page, next_page; for a page read by cursor (`after`), "
            "total only (follow Link rel=next)",
            "schema": {"type": "string"},
        }
