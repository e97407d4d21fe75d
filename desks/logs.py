"""Structured, one-line-per-happening logging: logfmt for people, JSON lines for collectors."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from desks.terminal import UNSAFE, escape_character

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _quote(value: Any) -> str:
    """Return a logfmt value: bare when safe, else quoted with every unsafe character escaped."""
    text = str(value)
    if text and not any(c in text for c in ' "=\\') and not UNSAFE.search(text):
        return text
    return '"' + UNSAFE.sub(escape_character, text.replace("\\", "\\\\").replace('"', '\\"')) + '"'


class LogfmtFormatter(logging.Formatter):
    """Render a record as `time=... level=... logger=... msg=... key=value ...`."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        fields = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        line = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
        if record.exc_info:
            line += " error=" + _quote(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON object: time, level, service, logger, message, fields."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        data: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        # ensure_ascii: every control, bidi and non-ASCII character arrives escaped.
        return json.dumps(data, ensure_ascii=True, default=str, separators=(",", ":"))


FORMATS = ("logfmt", "json")
_chosen: dict[str, str | None] = {"format": "logfmt", "service": None}


def formatter() -> logging.Formatter:
    """Return the formatter `configure` chose (gunicorn's log config builds it by this name)."""
    if _chosen["format"] == "json":
        return JsonFormatter(_chosen["service"])
    return LogfmtFormatter()


def configure(level: str = "INFO", format: str = "logfmt", service: str | None = None) -> None:
    """Send every desks log line to stderr, in logfmt or as JSON lines naming `service`."""
    _chosen.update(format=format, service=service)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The WSGI server's own access log would duplicate the API's request line.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # websockets logs every connection at INFO; ours already say who connected and why.
    logging.getLogger("websockets").setLevel(logging.WARNING)
