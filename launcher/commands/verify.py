"""`desks verify`: fold the event log and compare it with the store."""

from __future__ import annotations

import argparse
import sys

from desks.settings import Settings
from desks.terminal import printable


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks verify`; return the exit status."""
    from desks.store import open_store
    from desks.verify import verify

    store = open_store(settings)
    try:
        verdict = verify(store)
    finally:
        store.close()
    if verdict.agree:
        print(f"log and store agree: {verdict.desks} desks, {verdict.events} events")
        return 0
    for difference in verdict.differences:
        print(printable(str(difference)))
    print(
        f"log and store differ: {len(verdict.differences)} differences "
        f"({verdict.desks} desks, {verdict.events} events)",
        file=sys.stderr,
    )
    return 1
