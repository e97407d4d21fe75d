"""The console consumer: print every desk event once, in order, across reconnections."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from desks.backoff import Backoff
from desks.console import TEXT, render
from desks.events import DeskDeleted, DeskEvent, EventFormatError, decode

log = logging.getLogger("desks.consumer")

REMEMBERED_DESKS = 10_000


def subscribe_url(url: str, after: int | None, epoch: str | None) -> str:
    """Return `url` with the resume position in its query string."""
    parts = urlsplit(url)
    query = {k: v for k, v in (("after", after), ("epoch", epoch)) if v is not None}
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))


class Consumer:
    """A reconnecting client that prints events, resuming after the last seq it printed."""

    def __init__(
        self,
        url: str,
        after: int | None = None,
        lang: str = "es",
        write: Callable[[str], None] = print,
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self.last_seq = after
        self.epoch: str | None = None
        self._text = TEXT[lang]
        self._lang = lang
        self._write = write
        self._backoff = backoff or Backoff(initial=0.2, cap=5.0)
        # The last state seen of each desk, to print "old -> new" when the event lacks it.
        self._desks: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def run(self) -> None:
        """Print events forever, reconnecting with capped exponential backoff."""
        self._write(self._text["banner"])
        while True:
            try:
                await self._session()
                error = "closed"
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                error = type(exc).__name__
            delay = self._backoff.next()
            self._write(self._text["lost"].format(error=error, delay=delay))
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        epoch = self.epoch if self.last_seq is not None else None
        url = subscribe_url(self.url, self.last_seq, epoch)
        async with connect(url, open_timeout=5, close_timeout=1, compression=None) as connection:
            self._write(self._text["connected"])
            self._backoff.reset()
            async for message in connection:
                self._handle(message)

    def _handle(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
            kind = data.get("type")
            if kind in {"hello", "reset"}:
                self._position(kind, str(data["epoch"]), int(data["head"]))
                return
            event = decode(data)
        except (ValueError, KeyError, TypeError, AttributeError, EventFormatError) as error:
            log.warning("unreadable message skipped", extra={"error": str(error)})
            return
        if self.last_seq is not None and event.seq <= self.last_seq:
            return  # already printed: the broadcaster never repeats, but be safe across resets
        if not isinstance(event, DeskEvent):
            self._write(render(event, self._lang) + "\n")
            self._desks.clear()  # a resync: what we remember may be stale
        else:
            self._write(render(event, self._lang, self._desks.get(event.desk_id)) + "\n")
            self._remember(event.desk_id, None if isinstance(event, DeskDeleted) else event.desk)
        self.last_seq = event.seq

    def _position(self, kind: str, epoch: str, head: int) -> None:
        self.epoch = epoch
        if kind == "reset":
            self.last_seq = head
            self._write(self._text["reset"].format(head=head))
        elif self.last_seq is None:
            self.last_seq = head  # live from here; a reconnect resumes after it

    def _remember(self, desk_id: str, desk: dict[str, Any] | None) -> None:
        self._desks.pop(desk_id, None)
        if desk is not None:
            self._desks[desk_id] = desk
            if len(self._desks) > REMEMBERED_DESKS:
                self._desks.popitem(last=False)
