"""Options pymongo accepts that the embedded store does not honour: refused by name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.errors import InvalidOperation

from embedded.session import EmbeddedSession

# Options that change nothing here (durability and time limits are the store's own).
HARMLESS = {
    "comment",
    "bypass_document_validation",
    "max_time_ms",
    "maxTimeMS",
    "batch_size",
    "batchSize",
    "no_cursor_timeout",
    "allow_disk_use",
    "allowDiskUse",
    "background",
}


def refuse_unsupported(options: Mapping[str, Any]) -> None:
    """Raise NotImplementedError naming any option the embedded store does not honour."""
    for name, value in options.items():
        if name in HARMLESS or value is None or value is False:
            continue
        if name == "session":
            if not isinstance(value, EmbeddedSession):
                raise InvalidOperation("the session belongs to another client")
            value.check_usable()
            continue
        raise NotImplementedError(f"the option {name}= is not supported by the embedded store")
