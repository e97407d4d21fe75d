"""Regex character classes from Unicode's database, one spelling for Python and ECMA-262.

The API's name rule (its OpenAPI pattern, read by ECMA-262 regex engines too) and what the
logs and terminals escape are built from the same classes here, so they cannot drift apart.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable


def ranges(wanted: Callable[[int], bool]) -> list[tuple[int, int]]:
    """Return the code points of the Basic Multilingual Plane `wanted` keeps, as ranges."""
    found: list[tuple[int, int]] = []
    for code in range(0x10000):
        if not wanted(code):
            continue
        if found and found[-1][1] == code - 1:
            found[-1] = (found[-1][0], code)
        else:
            found.append((code, code))
    return found


def _escape(code: int) -> str:
    # Escapes that Python's re and ECMA-262 (OpenAPI's regex dialect) read alike.
    return f"\\x{code:02X}" if code < 0x80 else f"\\u{code:04X}"


def char_class(spans: list[tuple[int, int]]) -> str:
    """Return the inside of a regex character class `[...]` holding `spans`."""
    return "".join(
        _escape(low) if low == high else f"{_escape(low)}-{_escape(high)}" for low, high in spans
    )


# Unicode categories Cc (control) and Cf (format: bidi controls, zero-width characters, BOM)
# of the Basic Multilingual Plane, from this Python's Unicode database. Format characters
# beyond it belong to scripts and emoji (Egyptian hieroglyph joiners, the tags of subdivision
# flags): they stay allowed.
CONTROLS = ranges(lambda code: unicodedata.category(chr(code)) in {"Cc", "Cf"})
