"""Index keys: BSON values encoded as bytes whose byte order is MongoDB's sort order.

SQLite compares BLOBs with memcmp, so an index on these bytes sorts, ranges and enforces
uniqueness exactly as MongoDB's indexes do (the idea of MongoDB's own KeyString format): values
of different types order by BSON's canonical type order, all numeric types compare by value (1,
1.0 and Decimal128("1") are one key), strings by their UTF-8 bytes. Every encoding is
prefix-free, so compound keys are plain concatenations and a descending field is its bytes
inverted.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson import Binary, Code, DBRef, Decimal128, MaxKey, MinKey, ObjectId, Regex, Timestamp
from bson.datetime_ms import DatetimeMS

# BSON's canonical type order (MongoDB's bsontypes.h), one byte per class.
MIN_KEY = 0x01
NULL = 0x05
NUMBER = 0x0A  # with a sub-class byte: NaN < -inf < negatives < 0 < positives < +inf
STRING = 0x0F
OBJECT = 0x14
ARRAY = 0x19
BINARY = 0x1E
OBJECT_ID = 0x23
BOOLEAN = 0x28
DATE = 0x2D
TIMESTAMP = 0x32
REGEX = 0x37
CODE = 0x3C
MAX_KEY = 0xF0

_NAN, _NEG_INF, _NEGATIVE, _ZERO, _POSITIVE, _POS_INF = range(0x01, 0x07)
_END = b"\x00"
_EXPONENT_BIAS = 1 << 15


class UnindexableValue(NotImplementedError):
    """A value the embedded store cannot put in an index (an array: multikey indexes)."""


def encode(value: Any) -> bytes:
    """Return the order-preserving key bytes of one BSON value."""
    if value is None:
        return bytes([NULL])
    if isinstance(value, bool):
        return bytes([BOOLEAN, int(value)])
    if isinstance(value, int | float | Decimal128):
        return bytes([NUMBER]) + _number(value)
    if isinstance(value, str):
        return bytes([STRING]) + _string(value)
    if isinstance(value, ObjectId):
        return bytes([OBJECT_ID]) + value.binary
    if isinstance(value, datetime | DatetimeMS):
        return bytes([DATE]) + struct.pack(">Q", _millis(value) + (1 << 63))
    if isinstance(value, Mapping | DBRef):
        return bytes([OBJECT]) + _object(value.as_doc() if isinstance(value, DBRef) else value)
    if isinstance(value, list | tuple):
        return bytes([ARRAY]) + b"".join(encode(item) for item in value) + _END
    if isinstance(value, bytes):  # Binary is a bytes subclass
        subtype = value.subtype if isinstance(value, Binary) else 0
        return bytes([BINARY]) + struct.pack(">IB", len(value), subtype) + bytes(value)
    if isinstance(value, Timestamp):
        return bytes([TIMESTAMP]) + struct.pack(">II", value.time, value.inc)
    if isinstance(value, re.Pattern | Regex):
        regex = Regex.from_native(value) if isinstance(value, re.Pattern) else value
        return bytes([REGEX]) + _string(str(regex.pattern)) + struct.pack(">I", int(regex.flags))
    if isinstance(value, Code):
        return bytes([CODE]) + _string(str(value))
    if isinstance(value, MinKey):
        return bytes([MIN_KEY])
    if isinstance(value, MaxKey):
        return bytes([MAX_KEY])
    raise UnindexableValue(f"the embedded store cannot index a {type(value).__name__} value")


def compound(values: Sequence[Any], directions: Sequence[int]) -> bytes:
    """Return the key of several values, each ascending (1) or descending (-1)."""
    return b"".join(
        encode(value) if direction > 0 else invert(encode(value))
        for value, direction in zip(values, directions, strict=True)
    )


def invert(key: bytes) -> bytes:
    """Return the bytes that sort in the opposite order (a descending index field)."""
    return bytes(255 - byte for byte in key)


def type_class(value: Any) -> int:
    """Return the class byte of a value: values of different classes never compare equal."""
    return encode(value)[0]


def class_end(type_byte: int) -> bytes:
    """Return the smallest key above every key of the class `type_byte` (a range's end)."""
    return bytes([type_byte + 1])


def _number(value: int | float | Decimal128) -> bytes:
    if type(value) is int and value and -_EXACT < value < _EXACT:
        return _integer(value)  # seqs, versions: the common keys, without a Decimal
    number = value.to_decimal() if isinstance(value, Decimal128) else Decimal(value)
    if number.is_nan():
        return bytes([_NAN])
    if number.is_infinite():
        return bytes([_NEG_INF if number < 0 else _POS_INF])
    if number == 0:
        return bytes([_ZERO])  # -0.0 and 0 are one key, as in MongoDB
    magnitude = _magnitude(abs(number))
    if number < 0:
        return bytes([_NEGATIVE]) + invert(magnitude)
    return bytes([_POSITIVE]) + magnitude


def _magnitude(number: Decimal) -> bytes:
    # number = 0.DIGITS x 10**exponent with no leading or trailing zero digit: a larger
    # exponent is a larger number, then the digits compare left to right.
    _, digits, exponent = number.as_tuple()  # exact: normalize() would round to 28 digits
    assert isinstance(exponent, int)
    while digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    scale = exponent + len(digits)
    return (
        struct.pack(">H", scale + _EXPONENT_BIAS)
        + bytes(digit + 1 for digit in digits)  # 1..10, above the terminator
        + _END
    )


def _integer(value: int) -> bytes:
    # _magnitude's key of a non-zero integer, from its decimal digits: exponent 0, so the
    # scale is the number of digits, and the digits less trailing zeros map 0..9 to 1..10.
    digits = str(abs(value))
    magnitude = (
        struct.pack(">H", len(digits) + _EXPONENT_BIAS)
        + digits.rstrip("0").encode().translate(_DIGIT_BYTES)
        + _END
    )
    return bytes([_NEGATIVE]) + invert(magnitude) if value < 0 else bytes([_POSITIVE]) + magnitude


_DIGIT_BYTES = bytes.maketrans(b"0123456789", bytes(range(1, 11)))
# abs() of a Decimal rounds to its context's 28 digits, and store files hold the keys it made
# (0.1 as a float is 55 digits exactly): integers take the exact path only below that.
_EXACT = 10**28


def _string(text: str) -> bytes:
    # NUL is escaped as 00 FF and the string ends with 00 00: prefix-free, order kept.
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _object(document: Mapping[str, Any]) -> bytes:
    # MongoDB compares sub-documents pair by pair: value type, then field name, then value.
    parts = (
        bytes([type_class(value)]) + _string(name) + encode(value)
        for name, value in document.items()
    )
    return b"".join(parts) + _END


def _millis(value: datetime | DatetimeMS) -> int:
    if isinstance(value, DatetimeMS):
        return int(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    delta = value - datetime(1970, 1, 1)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
