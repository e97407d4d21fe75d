"""What a client may ask for in its connection URL: `?after=<seq>&epoch=<epoch>&token=<jwt>`."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


class BadQuery(ValueError):
    """The client's query string cannot be honoured."""


def query_token(path: str) -> str | None:
    """Return the `token` a browser put in its URL (it cannot set headers on a WebSocket)."""
    try:
        values = parse_qs(urlsplit(path).query).get("token", [])
    except ValueError:
        return None
    return values[0] if len(values) == 1 else None


def parse_query(path: str) -> tuple[int | None, str | None]:
    """Return (after, epoch) from a client's request path; raise BadQuery when malformed."""
    try:
        query = parse_qs(urlsplit(path).query, keep_blank_values=True, strict_parsing=False)
    except ValueError as error:
        raise BadQuery(f"unreadable query: {error}") from None
    unknown = set(query) - {"after", "epoch", "token"}  # the token is checked at the handshake
    if unknown:
        raise BadQuery(f"unknown parameter {sorted(unknown)[0][:40]!r}")
    if any(len(values) > 1 for values in query.values()):
        raise BadQuery("each parameter may be given once")
    after = None
    if "after" in query:
        raw = query["after"][0]
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise BadQuery("after must be a non-negative integer")
        after = int(raw)
    epoch = query["epoch"][0] if "epoch" in query else None
    if epoch is not None and not (0 < len(epoch) <= 64 and epoch.isascii() and epoch.isalnum()):
        raise BadQuery("epoch must be 1-64 letters or digits")
    return after, epoch
