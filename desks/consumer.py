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
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from desks.backoff import Backoff
from desks.console import TEXT, render
from desks.events import DeskDeleted, DeskEvent, EventFormatError, decode
from desks.terminal import printable

log = logging.getLogger("desks.consumer")

REMEMBERED_DESKS = 10_000
NEW_LOG = object()  # what _handle returns when the consumer must resubscribe from seq 0


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
        desk: str | None = None,
        token: str | None = None,
    ) -> None:
        self.url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.desk = desk  # print only this desk's events (resyncs and resets always)
        self.last_seq = after
        self.epoch: str | None = None
        self._text = TEXT[lang]
        self._lang = lang
        self._write = write
        self._backoff = backoff or Backoff(initial=0.2, cap=5.0)
        # The last state seen of each desk, to print "old -> new" when the event lacks it.
        self._desks: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def run(self) -> str:
        """Print events, reconnecting with capped exponential backoff, until the broadcaster
        refuses the token (no retry can fix that): return why."""
        self._write(self._text["banner"])
        while True:
            try:
                if await self._session():
                    continue
                error = "closed"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    body = printable(exc.response.body.decode(errors="replace").strip())
                    return f"the broadcaster refused the token (HTTP {status}): {body}"
                error = type(exc).__name__
            except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
                error = type(exc).__name__
            delay = self._backoff.next()
            self._write(self._text["lost"].format(error=error, delay=delay))
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """Print one connection's messages; True when it must resubscribe at once."""
        epoch = self.epoch if self.last_seq is not None else None
        url = subscribe_url(self.url, self.last_seq, epoch)
        async with connect(
            url,
            open_timeout=5,
            close_timeout=1,
            compression=None,
            additional_headers=self._headers,
        ) as connection:
            self._write(self._text["connected"])
            self._backoff.reset()
            async for message in connection:
                if self._handle(message) is NEW_LOG:
                    return True  # from the new log's start
        return False

    def _handle(self, message: str | bytes) -> object:
        """Print what `message` says; return NEW_LOG when the broadcaster follows a new log."""
        seq = None
        try:
            data = json.loads(message)
            kind = data.get("type")
            if kind in {"hello", "reset"}:
                epoch, head = data["epoch"], data["head"]
                if epoch is None:  # the broadcaster awaits its log: a second hello follows
                    return None
                return self._position(kind, str(epoch), int(head))
            seq = data.get("seq")
            event = decode(data)
        except (ValueError, KeyError, TypeError, AttributeError, EventFormatError) as error:
            self._unreadable(seq, error)
            return None
        if self.last_seq is not None and event.seq <= self.last_seq:
            return None  # already printed: the broadcaster never repeats, but be safe
        if self.desk is not None and isinstance(event, DeskEvent) and event.desk_id != self.desk:
            self.last_seq = event.seq  # seen, not shown
            return None
        try:
            if not isinstance(event, DeskEvent):
                text = render(event, self._lang)
                self._desks.clear()  # a resync or snapshot: what we remember may be stale
            else:
                text = render(event, self._lang, self._desks.get(event.desk_id))
                self._remember(
                    event.desk_id, None if isinstance(event, DeskDeleted) else event.desk
                )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            self._unreadable(event.seq, error)
        else:
            if text:  # desk_snapshot events print nothing, only remembered
                self._write(text + "\n")
        self.last_seq = event.seq  # printed or not, never asked for again
        return None

    def _unreadable(self, seq: object, error: Exception) -> None:
        where = f" (seq {seq})" if isinstance(seq, int) else ""
        reason = printable(f"{type(error).__name__}: {error}"[:200])  # may quote the message
        self._write(self._text["unreadable"].format(where=where, error=reason))
        log.warning("unreadable message skipped", extra={"seq": seq, "error": reason})

    def _position(self, kind: str, epoch: str, head: int) -> object:
        if self.epoch is not None and epoch != self.epoch and self.last_seq is not None:
            # Another log (a new store): what it holds is all new to us, from its first event.
            self.epoch, self.last_seq = epoch, 0
            self._desks.clear()
            self._write(self._text["new_log"])
            return NEW_LOG
        self.epoch = epoch
        if kind == "reset":
            self.last_seq = head
            self._write(self._text["reset"].format(head=head))
        elif self.last_seq is None:
            self.last_seq = head  # live from here; a reconnect resumes after it
        return None

    def _remember(self, desk_id: str, desk: dict[str, Any] | None) -> None:
        self._desks.pop(desk_id, None)
        if desk is not None:
            self._desks[desk_id] = desk
            if len(self._desks) > REMEMBERED_DESKS:
                self._desks.popitem(last=False)
