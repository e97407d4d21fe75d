"""Typed settings read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pymongo import uri_parser
from pymongo.errors import ConfigurationError, InvalidURI

from desks.auth import Verifier
from desks.hosts import PageOrigins, allowed_host, answering_to
from desks.redact import redacted


class SettingsError(ValueError):
    """An environment variable holds a value desks cannot use."""


# Each setting's environment variable: what from_env reads, what environ() writes.
ENVIRONMENT = {
    "mongodb_uri": "MONGODB_URI",
    "database": "DESKS_DB",
    "server_selection_timeout_ms": "DESKS_SERVER_SELECTION_TIMEOUT_MS",
    "api_host": "DESKS_API_HOST",
    "api_port": "DESKS_API_PORT",
    "embedded_path": "DESKS_EMBEDDED_PATH",
    "embedded_synchronous": "DESKS_EMBEDDED_SYNCHRONOUS",
    "embedded_history_size": "DESKS_EMBEDDED_HISTORY_SIZE",
    "embedded_noop_seconds": "DESKS_EMBEDDED_NOOP_SECONDS",
    "log_level": "DESKS_LOG_LEVEL",
    "log_format": "DESKS_LOG_FORMAT",
    "broadcaster_host": "DESKS_BROADCASTER_HOST",
    "broadcaster_port": "DESKS_BROADCASTER_PORT",
    "broadcaster_url": "DESKS_BROADCASTER_URL",
    "public_broadcaster_url": "DESKS_PUBLIC_BROADCASTER_URL",
    "client_buffer_bytes": "DESKS_CLIENT_BUFFER_BYTES",
    "lease_ttl_seconds": "DESKS_LEASE_TTL_SECONDS",
    "watcher_max_await_ms": "DESKS_WATCHER_MAX_AWAIT_MS",
    "watcher_health_port": "DESKS_WATCHER_HEALTH_PORT",
    "history_size": "DESKS_HISTORY_SIZE",
    "max_event_bytes": "DESKS_MAX_EVENT_BYTES",
    "checkpoint_idle_seconds": "DESKS_CHECKPOINT_IDLE_SECONDS",
    "ahead_wait_seconds": "DESKS_AHEAD_WAIT_SECONDS",
    "max_connections": "DESKS_MAX_CONNECTIONS",
    "max_connections_per_address": "DESKS_MAX_CONNECTIONS_PER_ADDRESS",
    "idempotency_ttl_seconds": "DESKS_IDEMPOTENCY_TTL_SECONDS",
    "jwt_secret": "DESKS_JWT_SECRET",
    "jwt_public_key": "DESKS_JWT_PUBLIC_KEY",
    "jwt_issuer": "DESKS_JWT_ISSUER",
    "jwt_audience": "DESKS_JWT_AUDIENCE",
    "anonymous_reads": "DESKS_ANONYMOUS_READS",
    "cors_origins": "DESKS_CORS_ORIGINS",
    "allowed_hosts": "DESKS_ALLOWED_HOSTS",
    "token": "DESKS_TOKEN",
}
# Variables of earlier versions that nothing reads any more, and why: said once at start.
RETIRED = {
    "DESKS_PUBLISH_TOKEN": "broadcasters read the event log themselves; no push channel",
    "DESKS_BROADCASTER_URLS": "broadcasters read the event log themselves; none is listed",
    "DESKS_PUBLISHER_MAX_LAG": "the watcher publishes nothing; each broadcaster's /readyz "
    "says whether it reads the log",
}


def retired(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the retired variables set in `environ` (default: os.environ), with why."""
    env = os.environ if environ is None else environ
    return {name: why for name, why in RETIRED.items() if env.get(name)}


@dataclass(frozen=True)
class Settings:
    """Everything desks reads from the environment, with safe local defaults."""

    mongodb_uri: str | None = None
    database: str = "desks"
    server_selection_timeout_ms: int = 3000
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    embedded_path: str = ".desks/embedded.sqlite3"
    embedded_synchronous: str = "FULL"
    embedded_history_size: int = 1_000_000
    embedded_noop_seconds: float = 10.0  # idle no-op interval, as a replica set's primary's
    log_level: str = "INFO"
    log_format: str = "logfmt"
    broadcaster_host: str = "127.0.0.1"
    broadcaster_port: int = 8765
    broadcaster_url: str = "ws://127.0.0.1:8765/"
    public_broadcaster_url: str | None = None  # None: the page's host, broadcaster_port
    client_buffer_bytes: int = 1024 * 1024
    lease_ttl_seconds: float = 10.0
    watcher_max_await_ms: int = 500  # a change-stream poll's wait (maxAwaitTimeMS)
    watcher_health_port: int = 8767
    history_size: int = 10_000
    max_event_bytes: int = 64 * 1024
    checkpoint_idle_seconds: int = 60
    ahead_wait_seconds: float = 5.0
    max_connections: int = 10_000
    max_connections_per_address: int = 200
    idempotency_ttl_seconds: int = 86_400
    jwt_secret: str | None = None  # HS256; at least 32 bytes
    jwt_public_key: str | None = None  # RS256, PEM (or a path to one)
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    anonymous_reads: bool = False
    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()  # (): the local names, and the machine's if bound to all
    token: str | None = None  # the bearer token `desks consume` and `desks replay` present

    def verifier(self) -> Verifier:
        """Return the token checker these settings configure (disabled with no key)."""
        return Verifier(
            self.jwt_secret,
            self.jwt_public_key,
            self.jwt_issuer,
            self.jwt_audience,
            self.anonymous_reads,
        )

    @property
    def trusted_hosts(self) -> tuple[str, ...]:
        """Return the host names the API answers to: DESKS_ALLOWED_HOSTS, else its bind's."""
        return self.allowed_hosts or answering_to(self.api_host)

    @property
    def page_origins(self) -> PageOrigins:
        """Return the web pages that may open the live feed: the API's, and CORS's."""
        return PageOrigins(self.trusted_hosts, self.cors_origins)

    @property
    def embedded(self) -> bool:
        """Tell whether the embedded store is used (no MONGODB_URI)."""
        return self.mongodb_uri is None

    @property
    def shared_store(self) -> bool:
        """Tell whether separate processes see one store (MongoDB, or an embedded file)."""
        return not self.embedded or self.embedded_path != ":memory:"

    def environ(self) -> dict[str, str]:
        """Return the environment `from_env` reads back as these settings (child processes)."""
        env: dict[str, str] = {}
        for name, variable in ENVIRONMENT.items():
            value = getattr(self, name)
            if value is None or value == ():
                continue
            env[variable] = ",".join(value) if isinstance(value, tuple) else f"{value}"
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from `environ` (default: os.environ), naming any invalid variable."""
        env = os.environ if environ is None else environ
        return cls(
            mongodb_uri=_mongodb_uri(env.get("MONGODB_URI") or None),
            database=_name(env, "DESKS_DB", cls.database),
            server_selection_timeout_ms=_integer(
                env,
                "DESKS_SERVER_SELECTION_TIMEOUT_MS",
                cls.server_selection_timeout_ms,
                1,
                600_000,
            ),
            api_host=env.get("DESKS_API_HOST") or cls.api_host,
            api_port=_integer(env, "DESKS_API_PORT", cls.api_port, 0, 65535),
            embedded_path=(env.get("DESKS_EMBEDDED_PATH") or "").strip() or cls.embedded_path,
            embedded_synchronous=_choice(
                env, "DESKS_EMBEDDED_SYNCHRONOUS", cls.embedded_synchronous, ("FULL", "NORMAL")
            ),
            embedded_history_size=_integer(
                env, "DESKS_EMBEDDED_HISTORY_SIZE", cls.embedded_history_size, 1, 10_000_000
            ),
            embedded_noop_seconds=_number(
                env, "DESKS_EMBEDDED_NOOP_SECONDS", cls.embedded_noop_seconds, 0.01, 3600
            ),
            log_level=_choice(
                env, "DESKS_LOG_LEVEL", cls.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")
            ),
            log_format=_choice(env, "DESKS_LOG_FORMAT", cls.log_format, ("logfmt", "json")),
            broadcaster_host=env.get("DESKS_BROADCASTER_HOST") or cls.broadcaster_host,
            broadcaster_port=_integer(
                env, "DESKS_BROADCASTER_PORT", cls.broadcaster_port, 0, 65535
            ),
            broadcaster_url=_websocket_url(
                "DESKS_BROADCASTER_URL", env.get("DESKS_BROADCASTER_URL") or cls.broadcaster_url
            ),
            public_broadcaster_url=_websocket_url(
                "DESKS_PUBLIC_BROADCASTER_URL", env["DESKS_PUBLIC_BROADCASTER_URL"]
            )
            if (env.get("DESKS_PUBLIC_BROADCASTER_URL") or "").strip()
            else None,
            client_buffer_bytes=_integer(
                env, "DESKS_CLIENT_BUFFER_BYTES", cls.client_buffer_bytes, 1024, 1 << 30
            ),
            lease_ttl_seconds=_number(
                env, "DESKS_LEASE_TTL_SECONDS", cls.lease_ttl_seconds, 0.1, 3600
            ),
            watcher_max_await_ms=_integer(
                env, "DESKS_WATCHER_MAX_AWAIT_MS", cls.watcher_max_await_ms, 1, 60_000
            ),
            watcher_health_port=_integer(
                env, "DESKS_WATCHER_HEALTH_PORT", cls.watcher_health_port, 0, 65535
            ),
            history_size=_integer(env, "DESKS_HISTORY_SIZE", cls.history_size, 1, 10_000_000),
            # Each client waiting ahead of the head holds a connection that long: at most 30 s.
            ahead_wait_seconds=_number(
                env, "DESKS_AHEAD_WAIT_SECONDS", cls.ahead_wait_seconds, 0, 30
            ),
            max_connections=_integer(
                env, "DESKS_MAX_CONNECTIONS", cls.max_connections, 1, 1_000_000
            ),
            max_connections_per_address=_integer(
                env,
                "DESKS_MAX_CONNECTIONS_PER_ADDRESS",
                cls.max_connections_per_address,
                1,
                1_000_000,
            ),
            jwt_secret=_jwt_secret(env),
            jwt_public_key=_jwt_public_key(env),
            jwt_issuer=env.get("DESKS_JWT_ISSUER") or None,
            jwt_audience=env.get("DESKS_JWT_AUDIENCE") or None,
            token=env.get("DESKS_TOKEN") or None,
            anonymous_reads=_flag(env, "DESKS_ANONYMOUS_READS", cls.anonymous_reads),
            cors_origins=tuple(
                _origin(origin.strip())
                for origin in (env.get("DESKS_CORS_ORIGINS") or "").split(",")
                if origin.strip()
            ),
            allowed_hosts=tuple(
                _allowed_host(host.strip().lower())
                for host in (env.get("DESKS_ALLOWED_HOSTS") or "").split(",")
                if host.strip()
            ),
            idempotency_ttl_seconds=_integer(
                env, "DESKS_IDEMPOTENCY_TTL_SECONDS", cls.idempotency_ttl_seconds, 1, 30 * 86_400
            ),
            checkpoint_idle_seconds=_integer(
                env, "DESKS_CHECKPOINT_IDLE_SECONDS", cls.checkpoint_idle_seconds, 1, 86_400
            ),
            max_event_bytes=_integer(
                env, "DESKS_MAX_EVENT_BYTES", cls.max_event_bytes, 4096, 8 * 1024 * 1024
            ),
        )


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    return _bounded(env, name, default, low, high, float)


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    return _bounded(env, name, default, low, high, int)


Bounded = TypeVar("Bounded", int, float)


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: Bounded,
    low: Bounded,
    high: Bounded,
    kind: type[Bounded],
) -> Bounded:
    """Return the variable `name` read as `kind` within [low, high], or `default` if unset."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw.strip())
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if not low <= value <= high:  # NaN fails this too
        shown = raw.strip() if kind is float else str(value)  # as typed: 1e400, not inf
        raise SettingsError(f"{name} must be between {_shown(low)} and {_shown(high)}, got {shown}")
    return value


def _shown(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (env.get(name) or default).strip()
    for choice in choices:  # any case
        if raw.upper() == choice.upper():
            return choice
    raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")


def _name(env: Mapping[str, str], name: str, default: str) -> str:
    raw = (env.get(name) or default).strip()
    # MongoDB rejects these characters in database names; fail at start-up, not at first write.
    if not raw or len(raw) > 63 or any(c in raw for c in '/\\. "$*<>:|?\0'):
        raise SettingsError(f"{name} is not a valid MongoDB database name: {raw!r}")
    return raw


def _jwt_secret(env: Mapping[str, str]) -> str | None:
    secret = env.get("DESKS_JWT_SECRET") or None
    if secret is not None and len(secret.encode()) < 32:
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash, 256 bits.
        raise SettingsError("DESKS_JWT_SECRET must be at least 32 bytes (HS256, RFC 7518)")
    if secret is not None and env.get("DESKS_JWT_PUBLIC_KEY"):
        raise SettingsError("set DESKS_JWT_SECRET or DESKS_JWT_PUBLIC_KEY, not both")
    return secret


def _jwt_public_key(env: Mapping[str, str]) -> str | None:
    raw = (env.get("DESKS_JWT_PUBLIC_KEY") or "").strip()
    if not raw:
        return None
    if not raw.startswith("-----BEGIN"):
        try:
            with open(raw, encoding="ascii") as file:
                raw = file.read().strip()
        except (OSError, UnicodeDecodeError) as error:
            raise SettingsError(f"DESKS_JWT_PUBLIC_KEY: cannot read {raw!r}: {error}") from None
    try:
        key = serialization.load_pem_public_key(raw.encode())
    except ValueError as error:
        raise SettingsError(f"DESKS_JWT_PUBLIC_KEY is not a PEM public key: {error}") from None
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise SettingsError("DESKS_JWT_PUBLIC_KEY must be an RSA public key of 2048 bits or more")
    return raw


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _origin(raw: str) -> str:
    parsed = urlsplit(raw)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc or parsed.path not in {"", "/"}:
        raise SettingsError(
            f"DESKS_CORS_ORIGINS holds origins like https://dash.example.com, got {raw!r}"
        )
    # As a browser sends it: lower case, no default port (else a listed page would be refused).
    try:
        scheme, host, port = parsed.scheme.lower(), parsed.netloc.lower(), parsed.port
    except ValueError:  # a port that is not one
        raise SettingsError(f"DESKS_CORS_ORIGINS: bad port in {raw!r}") from None
    if (scheme, port) in {("http", 80), ("https", 443)}:
        host = host.rsplit(":", 1)[0]
    return f"{scheme}://{host}"


def _allowed_host(raw: str) -> str:
    entry = allowed_host(raw)
    if entry is None:
        raise SettingsError(
            "DESKS_ALLOWED_HOSTS holds host names without a port, like desks.example.com, "
            f".example.com (and its subdomains), [::1] or *, got {raw!r}"
        )
    return entry


def _mongodb_uri(raw: str | None) -> str | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.startswith(("mongodb://", "mongodb+srv://")):
        raise SettingsError(
            f"MONGODB_URI must start with mongodb:// or mongodb+srv://, got {redacted(raw)!r}"
        )
    if raw.startswith("mongodb://"):  # +srv would need DNS here; pymongo checks it at connect
        try:
            uri_parser.parse_uri(raw)
        except (InvalidURI, ConfigurationError, ValueError) as error:
            raise SettingsError(f"MONGODB_URI is not a valid MongoDB URI: {error}") from None
    return raw


def _websocket_url(name: str, raw: str) -> str:
    raw = raw.strip()
    if not raw.startswith(("ws://", "wss://")):
        raise SettingsError(f"{name} must be a ws:// or wss:// URL, got {redacted(raw)!r}")
    return raw
