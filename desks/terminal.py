"""Text bound for a terminal or a log line, with the characters that could drive or fool it escaped.

C0 and C1 controls (CR, ESC, CSI...) and DEL forge lines or drive a terminal; Unicode format
characters (bidi overrides, zero-width spaces and joiners, word joiners, the BOM) make text
read otherwise than it is; line and paragraph separators split JSON lines for some readers.
Desk names written around the API can hold any of them.
"""

from __future__ import annotations

import re
import unicodedata


def _unsafe_class() -> str:
    """Return a regex class of the BMP's control and format characters (Cc, Cf: the set the
    API refuses in names) and the line and paragraph separators (Zl, Zp), from this Python's
    Unicode database. Format characters beyond the BMP (emoji tags, hieroglyph joiners)
    belong to scripts and stay."""
    codes = [
        code
        for code in range(0x10000)
        if unicodedata.category(chr(code)) in {"Cc", "Cf", "Zl", "Zp"}
    ]
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(
        f"\\u{low:04x}" if low == high else f"\\u{low:04x}-\\u{high:04x}" for low, high in ranges
    )


UNSAFE = re.compile(f"[{_unsafe_class()}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_character(match: re.Match[str]) -> str:
    """Return the escape of one unsafe character (`\\n`, `\\x1b`, `\\u202e`)."""
    character = match.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return `text` with every unsafe character escaped; the rest (emoji too) as it is."""
    return UNSAFE.sub(escape_character, text)


def printable_json(text: str) -> str:
    """Return JSON text with every unsafe character as a `\\uXXXX` escape: the same JSON value.

    json.dumps escapes C0 controls already; DEL, C1 controls and format characters it leaves
    raw (with ensure_ascii=False). They can only stand inside strings, where `\\uXXXX` means
    the same character.
    """
    return UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
