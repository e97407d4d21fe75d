"""`desks up`'s write path beside a bare gunicorn + Flask + SQLite app, same client, same run.

    python -m bench.write_path --reps 3 --writes 3000 --writers 4 [--settle 8]

Each rep starts `desks up` (on a fresh store file) and the reference app (`bench.bare_app`,
same workers and threads), in turn, and drives each with the same client: `--writers`
threads on HTTP keep-alive connections POSTing desks as fast as they are answered, opened
the moment the server is ready (or `--settle` seconds later). The ratio of POST/s is taken
within each rep, so a busy machine moves both sides alike. CPU time per write is counted for
each side's process tree: for `desks up`, its own process (watcher, broadcaster: `root`) and
its children (gunicorn's arbiter and workers: the API, `descendants`).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    cpu_seconds,
    free_port,
    percentiles,
    process_tree,
    record,
    run_threads,
)
from bench.store import Up, prefill, request

ROOT = Path(__file__).resolve().parents[1]
WORKERS, THREADS = 2, 4  # `desks up`'s defaults (launcher.api_process.ApiProcess)


class BareApp:
    """`bench.bare_app` under gunicorn, in its own process, on a free port."""

    def __init__(self, path: str) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "bench.bare_app", "--port", str(self.port)]
        command += ["--db", path, "--workers", str(WORKERS), "--threads", str(THREADS)]
        self.process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not _answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bare app did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        connection.request("GET", "/healthz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def drive(port: int, writes: int, writers: int, root: int | None = None) -> dict[str, Any]:
    """POST `writes` desks from `writers` keep-alive connections; return rate and latency,
    and with `root` the CPU time per write of that process and of its descendants."""
    post_ms: list[float] = []
    failures: list[str] = []

    def write(writer: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for n in range(writes // writers):
            body = {"name": f"bench {writer}-{n}", "width": 120, "height": 60}
            started = time.perf_counter()
            status, _, _ = request(connection, "POST", "/api/desks", body)
            post_ms.append((time.perf_counter() - started) * 1000)
            if status != 201:
                failures.append(str(status))

    before = _cpu(root) if root is not None else {}
    elapsed = run_threads(write, writers)
    assert not failures, failures[:5]
    figures = {"post_per_s": round(len(post_ms) / elapsed, 1), "post_ms": percentiles(post_ms)}
    if root is not None:
        after = _cpu(root)
        used = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        per_write = 1e6 / len(post_ms)
        figures["cpu_us_per_write"] = {
            "all": round(sum(used.values()) * per_write),
            "root": round(used.get(root, 0.0) * per_write),
            "descendants": round((sum(used.values()) - used.get(root, 0.0)) * per_write),
        }
    return figures


def _cpu(root: int) -> dict[int, float]:
    """Return the CPU seconds of `root` and of each of its descendants, by pid."""
    seconds: dict[int, float] = {}
    for pid in process_tree(root):
        with contextlib.suppress(OSError):
            seconds[pid] = cpu_seconds(pid)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.write_path")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--writes", type=int, default=3000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--settle", type=float, default=0.0, help="seconds between ready and load")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    reps: list[dict[str, Any]] = []
    for _ in range(args.reps):
        rep: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
            path = os.path.join(directory, "store.sqlite3")
            prefill(path, 0)
            up = Up(path, free_port(), free_port())
            try:
                time.sleep(args.settle)
                rep["desks_up"] = drive(up.port, args.writes, args.writers, up.process.pid)
            finally:
                up.close()
            bare = BareApp(os.path.join(directory, "bare.sqlite3"))
            try:
                time.sleep(args.settle)
                rep["bare_app"] = drive(bare.port, args.writes, args.writers, bare.process.pid)
            finally:
                bare.close()
        rep["ratio"] = round(rep["desks_up"]["post_per_s"] / rep["bare_app"]["post_per_s"], 2)
        print(json.dumps(rep), flush=True)
        reps.append(rep)
    figures = {
        "parameters": {
            "writes": args.writes,
            "writers": args.writers,
            "settle_s": args.settle,
            "workers": WORKERS,
            "threads": THREADS,
        },
        "reps": reps,
        "ratios": [rep["ratio"] for rep in reps],
    }
    name = f"write-path-{args.writers}-{args.settle:g}"
    record("write_path", name, figures, args.results)


if __name__ == "__main__":
    main()
