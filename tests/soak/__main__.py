"""`python -m tests.soak`: a long soak (`make soak`), its counts printed; exit 1 on any problem."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from tests.soak.harness import Soak


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600, help="of faults (%(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="of every random choice (%(default)s)")
    parser.add_argument("--workdir", help="for the store file and every process's log")
    parser.add_argument(
        "--mongodb-uri",
        default=os.environ.get("DESKS_TEST_MONGODB_URI"),
        help="a replica set to soak instead of an embedded file (DESKS_TEST_MONGODB_URI)",
    )
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="desks-soak-"))
    report = Soak(workdir, args.seed, args.seconds, args.mongodb_uri).run()
    print(report.summary())
    print(f"  logs                 {workdir}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
