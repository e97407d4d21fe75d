"""`desks consume`: the console consumer, printing each event once."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from desks.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run `desks consume`; return the exit status."""
    from desks.consumer import Consumer

    consumer = Consumer(
        args.url,
        args.after,
        args.lang,
        lambda line: print(line, flush=True),  # desk values arrive escaped (console)
        desk=args.desk,
        token=args.token,
    )
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        refused = asyncio.run(consumer.run())
    except KeyboardInterrupt:
        return 0
    print(f"desks consume: {refused}", file=sys.stderr)
    return 1
