"""Who may open a live connection: the page's Origin, the token's scope, and the limits.

Checked during the handshake, before the upgrade: a refusal is an HTTP answer naming why
(403 for a page from elsewhere or a token without the scope, 401 without a token when one
is needed, 503 with Retry-After beyond the limits).
"""

from __future__ import annotations

import functools
import logging
import weakref
from http import HTTPStatus

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from broadcaster.admission import Admission
from broadcaster.peer import remote
from broadcaster.query import query_token
from desks.auth import READ, AuthError, Grant, ScopeError, Verifier, bearer
from desks.hosts import PageOrigins

log = logging.getLogger("desks.broadcaster")

RETRY_AFTER_S = 5  # a client refused for the limits may try again after this


class Gate:
    """Admit a client's handshake on `/`, or answer why not; remember what its token grants."""

    def __init__(self, origins: PageOrigins, verifier: Verifier, admission: Admission) -> None:
        self.origins = origins
        self.verifier = verifier
        self.admission = admission
        self._grants: weakref.WeakKeyDictionary[ServerConnection, Grant] = (
            weakref.WeakKeyDictionary()
        )

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Return None to let the handshake go on, or the answer refusing it."""
        # A browser's WebSocket is not fenced by CORS: any page the user opens could read the
        # feed (cross-site WebSocket hijacking), unless its Origin is checked.
        why = self.origins.refuse(request.headers.get("Origin"))
        if why is not None:
            log.warning("page refused", extra={"remote": remote(connection), "reason": why})
            return connection.respond(HTTPStatus.FORBIDDEN, f"{why}\n")
        token = bearer(request.headers.get("Authorization")) or query_token(request.path)
        try:
            grant = self.verifier.check(token, READ)
        except (AuthError, ScopeError) as error:
            log.warning(
                "client refused", extra={"remote": remote(connection), "reason": str(error)}
            )
            status = (
                HTTPStatus.UNAUTHORIZED if isinstance(error, AuthError) else HTTPStatus.FORBIDDEN
            )
            refused = connection.respond(status, f"{error}\n")
            refused.headers["WWW-Authenticate"] = 'Bearer realm="desks"'
            return refused
        full = self._admit(connection)
        if full is not None:
            return full
        if grant is not None:
            self._grants[connection] = grant
        return None

    def _admit(self, connection: ServerConnection) -> Response | None:
        """Count a client against the limits, or answer 503 with Retry-After."""
        address = connection.remote_address[0] if connection.remote_address else "?"
        why = self.admission.admit(address)
        if why is None:
            # Released once the TCP connection is gone, even if it went before this ran (a
            # reset while websockets answered a ping sent with the request): a callback added
            # to a done future still runs, once. A hook in connection_lost would miss that.
            lost = connection.connection_lost_waiter
            lost.add_done_callback(functools.partial(self._released, address))
            return None
        log.warning("client refused", extra={"remote": remote(connection), "reason": why})
        refused = connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"{why}; retry later\n")
        refused.headers["Retry-After"] = str(RETRY_AFTER_S)
        return refused

    def _released(self, address: str, _lost: object) -> None:
        # A partial of this, not a lambda: one is kept for every client (~50 bytes less each).
        self.admission.release(address)

    def grant_of(self, connection: ServerConnection) -> Grant | None:
        """Return what the token of `connection` granted (None: no token was needed)."""
        return self._grants.get(connection)
