"""Secrets never echoed: a URI shown in a message or a log line has its password replaced."""

from __future__ import annotations

import re

# user:password@ in any URI-like text, well-formed or not (a message about a malformed URI
# must not be the one place its password is shown).
_PASSWORD = re.compile(r"([^\s:/@]+):[^\s@/]*@")


def redacted(text: str) -> str:
    """Return `text` with the password of every `user:password@` replaced by `***`."""
    return _PASSWORD.sub(r"\1:***@", text)
