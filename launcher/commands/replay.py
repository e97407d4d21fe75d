"""`desks replay`: events, or the registry as of a seq, read from the API as JSON lines."""

from __future__ import annotations

import argparse
import http.client
import json
import re
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from desks.settings import Settings
from desks.terminal import printable, printable_json

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')  # a Link header's next page


def _read_list(url: str, token: str | None) -> tuple[list[Any], int | None] | None:
    """Return the JSON list the API answers at `url` and the cursor of its next page (the
    `after` of its `Link: rel="next"`), or None having said why it cannot."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            found = json.load(response)
            link = _NEXT.search(response.headers.get("Link") or "")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        # The server's words (a reason phrase) reach the terminal escaped, like its values.
        print(printable(f"desks replay: cannot read {url}: {error}"), file=sys.stderr)
        return None
    if not isinstance(found, list):
        print(printable(f"desks replay: {url} did not answer a list"), file=sys.stderr)
        return None
    # Only the cursor is taken from the link: the next URL is built on --api like the first
    # (an API behind a path prefix links from the root), and the token goes nowhere else.
    after = parse_qs(urlsplit(link.group(1)).query).get("after", [""])[0] if link else ""
    return found, int(after) if after.isdigit() else None


def _print_json(value: Any) -> None:
    # Values written around the API may hold controls or bidi characters: escaped, same JSON.
    print(printable_json(json.dumps(value, ensure_ascii=False)), flush=True)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks replay`; return the exit status."""
    base = args.api.rstrip("/")
    if args.as_of is not None:
        # By cursor: each page names the next (pages by number cost O(N^2) over a registry).
        after, remaining = 0, None

        def url(after: int, size: int) -> str:
            query = {"as_of": args.as_of, "after": after, "page_size": size}
            return f"{base}/api/desks?{urlencode(query)}"

        def following(items: list[Any], cursor: int | None, size: int) -> int | None:
            return cursor
    else:
        after, remaining = args.after, args.limit
        path = "/api/events" if args.desk is None else f"/api/desks/{quote(args.desk, '')}/events"

        def url(after: int, size: int) -> str:
            return f"{base}{path}?{urlencode({'after': after, 'limit': size})}"

        def following(items: list[Any], cursor: int | None, size: int) -> int | None:
            if len(items) < size:
                return None  # a short page: the end
            seq = items[-1].get("seq") if isinstance(items[-1], dict) else None
            return seq if isinstance(seq, int) else -1  # no seq to go on from: does not move on

    position: int | None = after
    while position is not None and (remaining is None or remaining > 0):
        size = 1000 if remaining is None else min(remaining, 1000)
        read = _read_list(url(position, size), args.token)
        if read is None:
            return 1
        items, cursor = read
        for item in items:
            _print_json(item)
        if remaining is not None:
            remaining -= len(items)
            if remaining <= 0:
                break  # all that was asked for
        step = following(items, cursor, size)
        if step is not None and step <= position:
            print(f"desks replay: the API's next page does not move on ({step})", file=sys.stderr)
            return 1
        position = step
    return 0
