"""Marshmallow schemas: what the desks API accepts and returns."""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from desks.characters import CONTROLS, char_class

MAX_CENTIMETRES = 10_000
MAX_NAME_LENGTH = 100


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
        if isinstance(value, float) and math.isnan(value):
            raise self.make_error("invalid")
        if not 0 < value <= MAX_CENTIMETRES:  # 1e400 and 5,000 digits are infinite by now
            raise self.make_error("range")
        # 180.0 and 180 are the same length: keep integers integral so "180x90cm" prints right.
        return int(value) if isinstance(value, float) and value.is_integer() else value


# What JavaScript's \s matches, so the documented pattern and the trimming agree exactly.
WHITESPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# Default_Ignorable_Code_Point of the BMP (Unicode's DerivedCoreProperties): drawn as nothing.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
)  # fmt: skip


# Control and format characters (desks.characters: the set logs and terminals escape), and
# the ignorable rest.
_CONTROLS = char_class(CONTROLS)
_INVISIBLE = char_class([r for r in _IGNORABLE if unicodedata.category(chr(r[0])) != "Cf"])
# The name rule, once: no control or format character, and at least one character that is
# neither one of those, nor whitespace, nor ignorable. The validator uses the same classes.
# Surrounding whitespace is trimmed, control characters (tab, newline...) included.
_AROUND = char_class([(ord(c), ord(c)) for c in WHITESPACE])
NAME_PATTERN = (
    f"^[{_AROUND}]*[^{_CONTROLS}]*[^{_CONTROLS}{_INVISIBLE}\\s][^{_CONTROLS}]*[{_AROUND}]*$"
)
# Lone surrogates too (JSON can carry them, UTF-8 cannot): kept out of the pattern, which
# regex engines that refuse surrogate code points could not compile.
_UNWANTED = re.compile(f"[{_CONTROLS}\\uD800-\\uDFFF]")
_VISIBLE = re.compile(f"[^{_CONTROLS}{_INVISIBLE}\\s]")


class DeskName(fields.String):
    """A desk name: 1-100 characters once surrounding whitespace is trimmed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            validate=validate.Length(min=1, max=MAX_NAME_LENGTH),
            metadata={
                "description": "at most 100 characters as sent; trimmed of surrounding "
                "whitespace (tabs and newlines too); no other control or format characters "
                "(Unicode Cc, Cf); at least one visible character",
                "pattern": NAME_PATTERN,
            },
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        sent = super()._deserialize(value, attr, data, **kwargs)
        if len(sent) > MAX_NAME_LENGTH:  # as sent, as the schema's maxLength says
            raise ValidationError(f"Longer than maximum length {MAX_NAME_LENGTH}.")
        text = sent.strip(WHITESPACE)
        if _UNWANTED.search(text):
            # Control characters garble consoles and logs; format characters (bidi overrides,
            # zero-width ones) make two names look alike or a name read backwards; lone
            # surrogates cannot be stored as UTF-8.
            raise ValidationError(
                "Must not contain control or format characters (Unicode Cc, Cf) or unpaired "
                "surrogates."
            )
        if text and not _VISIBLE.search(text):
            raise ValidationError("Must contain at least one visible character.")
        return text


class DeskSchema(Schema):
    """A desk as the API returns it.

    A desk written straight into the store, around the API, is shown with the fields it has,
    each value mapped to JSON as in events (docs/events.md): any field but `id` may be missing
    or of another type. Values are dumped as they are, never coerced.
    """

    id = fields.String(
        required=True,
        metadata={"description": "24 hex digits (an ObjectId) for every desk the API created"},
    )
    name = fields.Raw(metadata={"type": "string"})
    width = fields.Raw(metadata={"type": "number"})
    height = fields.Raw(metadata={"type": "number"})
    version = fields.Raw(metadata={"type": "integer", "minimum": 1})
    created_at = fields.Raw(metadata={"type": "string", "format": "date-time"})
    updated_at = fields.Raw(metadata={"type": "string", "format": "date-time"})


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
    """Filters for listing desks, now or as they stood after an event."""

    as_of = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={
            "description": "list the desks as they stood right after the event with this seq "
            "(from the event log), in the order they entered the log; X-Event-Seq echoes it"
        },
    )

    after = fields.Integer(
        validate=validate.Range(min=0, max=2**62),
        metadata={
            "description": "a cursor: list the desks that entered the log after this seq (take "
            "it from the previous page's Link rel=next), as of `as_of` or else the log's head; "
            "`page` then counts from there, so reading every page costs as much as reading "
            "the desks once"
        },
    )

    name = fields.String(
        validate=validate.Length(min=1, max=MAX_NAME_LENGTH),
        metadata={"description": "case-insensitive substring of the name, matched literally"},
    )
