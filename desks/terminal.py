"""Text bound for a terminal or a log line, with the characters that could drive or fool it escaped.

C0 and C1 controls (CR, ESC, CSI...) and DEL forge lines or drive a terminal; Unicode format
characters (bidi overrides, zero-width spaces and joiners, word joiners, the BOM) make text
read otherwise than it is; line and paragraph separators split JSON lines for some readers.
Desk names written around the API can hold any of them.
"""

from __future__ import annotations

import re

from desks.characters import CONTROLS, char_class

# What the API refuses in names (the BMP's Cc and Cf), and the line and paragraph separators.
UNSAFE = re.compile(f"[{char_class([*CONTROLS, (0x2028, 0x2029)])}]")
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
