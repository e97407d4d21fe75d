"""Marshmallow schemas: what the desks API accepts and returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_CENTIMETRES = 10_000
MAX_NAME_LENGTH = 100
PAGINATION_ARGS = {"page", "page_size"}


class Centimetres(fields.Field[int | float]):
    """A length in centimetres: a JSON number > 0 and <= 10000, never a string or boolean."""

    default_error_messages = {  # noqa: RUF012
        "invalid": "Not a valid number.",
        "range": f"Must be greater than 0 and at most {MAX_CENTIMETRES}.",
    }

    def __init__(self, **kwargs: Any) -> None:
        metadata = {  # OpenAPI 3.0: exclusiveMinimum is a flag on minimum
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": MAX_CENTIMETRES,
            "description": "centimetres",
        }
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int | float:
        # bool is an int in Python; JSON true is not a length.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.make_error("invalid")
        if not 0 < value <= MAX_CENTIMETRES:
            raise self.make_error("range")
        # 180.0 and 180 are the same length: keep integers integral so "180x90cm" prints right.
        return int(value) if isinstance(value, float) and value.is_integer() else value


# What JavaScript's \s matches, so the documented pattern and the trimming agree exactly.
WHITESPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
NAME_PATTERN = r"^[^\x00-\x1F\x7F]*[^\x00-\x1F\x7F\s][^\x00-\x1F\x7F]*$"


class DeskName(fields.String):
    """A desk name: 1-100 characters once surrounding whitespace is trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=validate.Length(min=1, max=MAX_NAME_LENGTH),
            metadata={
                "description": "trimmed of surrounding whitespace; no control characters",
                "pattern": NAME_PATTERN,
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip(WHITESPACE)
        if any(ord(c) < 32 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in text):
            # Control characters garble consoles; lone surrogates cannot be stored as UTF-8.
            raise ValidationError("Must not contain control characters or unpaired surrogates.")
        return text


class DeskSchema(Schema):
    """A desk as the API returns it."""

    id = fields.String(required=True, metadata={"pattern": "^[0-9a-f]{24}$"})
    name = fields.String(required=True)
    width = fields.Raw(required=True, metadata={"type": "number"})
    height = fields.Raw(required=True, metadata={"type": "number"})
    version = fields.Integer(required=True, metadata={"minimum": 1})
    created_at = fields.String(required=True, metadata={"format": "date-time"})
    updated_at = fields.String(required=True, metadata={"format": "date-time"})


class DeskCreateSchema(Schema):
    """A new desk, or a full replacement (PUT): every field required."""

    class Meta:
        unknown = RAISE

    name = DeskName(required=True)
    width = Centimetres(required=True)
    height = Centimetres(required=True)


class DeskPatchSchema(Schema):
    """A partial update: any non-empty subset of the desk's fields."""

    class Meta:
        unknown = RAISE

    name = DeskName()
    width = Centimetres()
    height = Centimetres()

    @validates_schema
    def _not_empty(self, data: Mapping[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("Give at least one of: name, width, height.", "_schema")


class DeskQueryArgsSchema(Schema):
    """Filters for listing desks."""

    name = fields.String(
        validate=validate.Length(min=1, max=MAX_NAME_LENGTH),
        metadata={"description": "case-insensitive substring of the name, matched literally"},
    )

    @validates_schema(pass_original=True)
    def _no_unknown(
        self, data: Mapping[str, Any], original: Mapping[str, Any], **kwargs: Any
    ) -> None:
        # Query strings are parsed leniently by default; `?name[$ne]=x` must not pass silently.
        unknown = set(original) - set(self.fields) - PAGINATION_ARGS
        if unknown:
            raise ValidationError({key: ["Unknown field."] for key in sorted(unknown)})
