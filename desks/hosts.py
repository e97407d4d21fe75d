"""Which names the API answers to and which web pages may open the live feed.

A Host header the API does not answer to is refused, so that no page, redirect or broadcaster
address is ever built from a name an attacker chose (DNS rebinding, a poisoned cache). A
browser's WebSocket is not shielded by CORS: the broadcaster accepts a page's `Origin` only if
the API could have served that page (an allowed host) or CORS allows it.
"""

from __future__ import annotations

import functools
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

# The paths of every service's probes and scrape. They answer whatever the Host: balancers'
# health checks and Prometheus's discovery name a replica by its address, and these answers
# build nothing from the Host, so there is nothing to poison.
PROBES = frozenset({"/healthz", "/readyz", "/metrics"})
# The names a server bound to loopback answers to (Django's default when DEBUG is on).
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")
_WILDCARDS = {"0.0.0.0", "::", ""}
# A host: a name or IPv4 address, or a bracketed IPv6 one.
_NAME = r"[a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+]"
# A Host header's value: a host, then maybe a port.
_HOST = re.compile(rf"({_NAME})(?::[0-9]{{1,5}})?", re.IGNORECASE)
# An allowed host (DESKS_ALLOWED_HOSTS): a host, `.` and a domain, or `*`; lower case, no port.
_ALLOWED = re.compile(rf"\*|\.?(?:{_NAME})")


@functools.cache  # names and routes do not change under a process; the lookups cost DNS
def answering_to(bind: str) -> tuple[str, ...]:
    """Return the host names a server bound to `bind` answers to when none are configured.

    The local names always; a server bound to every address also answers to this machine's
    names and addresses, as a dashboard opened from another machine uses one of those (never
    a name some other domain's DNS points here); one bound to an address, to that address.
    The bind address itself too: a probe or a client given `0.0.0.0` sends it as its Host.
    """
    names = [*LOCAL_HOSTS, _bracketed(bind)]  # a probe to 0.0.0.0 names it
    if bind in _WILDCARDS:
        hostname = socket.gethostname()
        names += [hostname, socket.getfqdn()]
        try:
            infos = socket.getaddrinfo(hostname, None, proto=socket.IPPROTO_TCP)
        except OSError:
            infos = []
        names += [_bracketed(str(info[4][0])) for info in infos]
        names += [_bracketed(address) for address in _routed_addresses()]
    return tuple(dict.fromkeys(name.lower() for name in names if name))


def host_allowed(host: str, allowed: Iterable[str]) -> bool:
    """Tell whether a `host[:port]` is one of `allowed`, by Django's rules: the port aside,
    `.example.com` matches it and its subdomains, `*` any well-formed host.

    Written here, not werkzeug's `host_is_trusted`, which cuts an allowed `[::1]` at its
    first colon and so never matches an IPv6 address.
    """
    matched = _HOST.fullmatch(host)
    if matched is None:
        return False
    name = without_final_dot(matched.group(1).lower())
    for pattern in allowed:
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith(".") and (name == pattern[1:] or name.endswith(pattern)):
            return True
    return False


def allowed_host(raw: str) -> str | None:
    """Return an allowed-host entry as it is matched (without a final dot), None if malformed."""
    entry = without_final_dot(raw)
    return entry if _ALLOWED.fullmatch(entry) else None


@dataclass(frozen=True)
class PageOrigins:
    """The web pages that may open the live feed: the API's own (an allowed host) and CORS's."""

    hosts: tuple[str, ...] = LOCAL_HOSTS
    cors: tuple[str, ...] = ()

    def refuse(self, origin: str | None) -> str | None:
        """Say why a page of this `Origin` may not connect, or None if it may.

        No Origin: not a browser (a console, a service), which CORS would not stop either. A
        page on an allowed host may connect whatever its port: the API serves the dashboard
        on one port and the broadcaster listens on another.
        """
        if origin is None or origin in self.cors:
            return None
        parts = urlsplit(origin)
        if parts.scheme in {"http", "https"} and host_allowed(parts.netloc, self.hosts):
            return None
        return (
            f"pages from {origin[:100]!r} may not connect: neither an allowed host "
            "(DESKS_ALLOWED_HOSTS) nor a CORS origin (DESKS_CORS_ORIGINS)"
        )


def without_final_dot(name: str) -> str:
    """Return a host name without the one dot that may end a fully qualified name."""
    return name[:-1] if name.endswith(".") else name


def _routed_addresses() -> list[str]:
    """Return the addresses this machine sends from by default (the ones others reach it by,
    which its name may not resolve to). Connecting a datagram socket sends nothing."""
    found = []
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                found.append(str(sock.getsockname()[0]))
        except OSError:
            continue  # no route of that family
    return found


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address and not address.startswith("[") else address
