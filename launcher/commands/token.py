"""`desks token`: mint a JWT for clients and services."""

from __future__ import annotations

import argparse
import sys

from desks.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks token`; return the exit status."""
    from desks.auth import mint

    if args.private_key:
        with open(args.private_key, encoding="ascii") as file:
            key, algorithm = file.read(), "RS256"
    elif settings.jwt_secret:
        key, algorithm = settings.jwt_secret, "HS256"
    else:
        print("desks token: set DESKS_JWT_SECRET or give --private-key", file=sys.stderr)
        return 2
    scopes = sorted(set(args.scope))
    print(
        mint(
            key,
            scopes,
            args.ttl,
            algorithm,
            args.subject,
            settings.jwt_issuer,
            settings.jwt_audience,
        )
    )
    return 0
