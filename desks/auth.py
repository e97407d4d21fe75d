"""Bearer tokens (JWT, by PyJWT): who may read and who may write, for the API and broadcaster.

One algorithm is pinned by configuration, never taken from the token: HS256 with
DESKS_JWT_SECRET, or RS256 with DESKS_JWT_PUBLIC_KEY. So `alg: none` and HS/RS confusion (an
RSA public key used as an HMAC secret) are refused by PyJWT before any claim is read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

READ = "desks:read"
WRITE = "desks:write"
SCOPES = (READ, WRITE)


class AuthError(Exception):
    """The request carries no usable token (HTTP 401); the message says why."""


class ScopeError(Exception):
    """The token is valid but lacks the scope (HTTP 403)."""


@dataclass(frozen=True)
class Grant:
    """What a valid token allows, and until when (seconds since the epoch)."""

    subject: str | None
    scopes: frozenset[str]
    expires_at: float


class Verifier:
    """Checks tokens against the configured key; `enabled` is False when none is set."""

    def __init__(
        self,
        secret: str | None = None,
        public_key: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        anonymous_reads: bool = False,
    ) -> None:
        if secret and public_key:
            raise ValueError("set DESKS_JWT_SECRET or DESKS_JWT_PUBLIC_KEY, not both")
        self._key: Any = secret or public_key
        self._algorithm = "HS256" if secret else "RS256"
        self._issuer = issuer
        self._audience = audience
        self.anonymous_reads = anonymous_reads

    @property
    def enabled(self) -> bool:
        """Tell whether tokens are required at all."""
        return self._key is not None

    @property
    def algorithm(self) -> str:
        """Return the one algorithm tokens must be signed with."""
        return self._algorithm

    def needs_token(self, scope: str) -> bool:
        """Tell whether an action needing `scope` needs a token (not when reads are open)."""
        return self.enabled and not (scope == READ and self.anonymous_reads)

    def check(self, token: str | None, scope: str) -> Grant | None:
        """Return the grant of `token` for `scope`, or None when none is needed.

        Raises AuthError (missing, malformed, expired, wrongly signed) or ScopeError.
        """
        if not self.needs_token(scope):
            return None
        if not token:
            raise AuthError("a bearer token is required")
        grant = self.verify(token)
        if scope not in grant.scopes:
            raise ScopeError(f"the token lacks the scope {scope}")
        return grant

    def verify(self, token: str) -> Grant:
        """Decode and check `token`: signature, algorithm, expiry, and issuer/audience if set."""
        required = ["exp"] + (["iss"] if self._issuer else []) + (["aud"] if self._audience else [])
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": required, "verify_aud": self._audience is not None},
                leeway=5,  # seconds of clock skew between the minter and us
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except jwt.InvalidTokenError as error:
            raise AuthError(f"invalid token: {error}") from None
        return Grant(
            subject=str(claims["sub"]) if "sub" in claims else None,
            scopes=frozenset(_scopes(claims)),
            expires_at=float(claims["exp"]),
        )


def _scopes(claims: dict[str, Any]) -> Iterable[str]:
    # OAuth 2.0 (RFC 8693): "scope" is a space-separated string; some issuers send "scp", a list.
    scope = claims.get("scope", "")
    if isinstance(scope, str):
        yield from scope.split()
    listed = claims.get("scp", [])
    if isinstance(listed, list):
        yield from (str(item) for item in listed)


def mint(
    key: str,
    scopes: Iterable[str],
    ttl_seconds: int,
    algorithm: str = "HS256",
    subject: str = "desks-dev",
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Return a signed token (for development: `desks token`)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": subject,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + ttl_seconds,
    }
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=algorithm)


def bearer(header: str | None) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, if any."""
    if not header:
        return None
    kind, _, token = header.partition(" ")
    return token.strip() or None if kind.lower() == "bearer" else None
