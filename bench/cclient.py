"""Lean clients in C (bench/lean_client.c), compiled on first use, driven like lean_client's.

The Python lean client costs about as much CPU per delivery as the server it measures; on 2
cores that hides what a second server process gives. The C client costs a small fraction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

from bench import lean_client

SOURCE = Path(__file__).with_name("lean_client.c")
BUILD = Path.home() / ".cache" / "desks-bench"


def binary() -> Path:
    """Return the compiled client, compiling it if its source changed (needs gcc or cc)."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    built = BUILD / f"lean_client-{digest}"
    if not built.exists():
        compiler = shutil.which("gcc") or shutil.which("cc")
        if compiler is None:
            raise RuntimeError("the C lean client needs gcc or cc")
        BUILD.mkdir(parents=True, exist_ok=True)
        subprocess.run([compiler, "-O2", "-o", str(built), str(SOURCE)], check=True)
    return built


class CClients:
    """`count` connections over `processes` C client processes, each from its own address."""

    def __init__(
        self,
        port: int,
        count: int,
        events: int,
        processes: int = 2,
        sample_every: int = 0,
        sources: list[str] | None = None,
        path: str = "/",
        pause_us: int = 0,
    ) -> None:
        shares = lean_client.split(count, processes)
        sources = sources or ["127.0.0.1"]
        program = str(binary())
        self._events = events
        self._workers = [
            subprocess.Popen(
                [program, "127.0.0.1", str(port), str(share), sources[i % len(sources)], path]
                + [str(sample_every), str(events), str(pause_us)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for i, share in enumerate(shares)
            if share
        ]

    def connect(self) -> int:
        """Return how many connections are open once every process has connected its own."""
        opened = 0
        for worker in self._workers:
            assert worker.stdout is not None
            line = worker.stdout.readline().split()
            if line[:1] != ["connected"]:
                raise RuntimeError(f"a C client did not connect: {line}")
            opened += int(line[1])
        return opened

    def go(self) -> None:
        """Let the clients start counting."""
        for worker in self._workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()

    @staticmethod
    def _stop(worker: subprocess.Popen[str]) -> None:
        if worker.poll() is None and worker.stdin is not None and not worker.stdin.closed:
            with contextlib.suppress(OSError, ValueError):  # it ended meanwhile
                worker.stdin.write("stop\n")
                worker.stdin.flush()

    def finish(self, sent: Any, timeout: float = 600) -> list[dict[str, Any]]:
        """Return each process's report once it has every event (or `timeout` passed), with
        latencies from `sent[seq]` (time.monotonic() when the event was sent)."""
        # One deadline for all (each told to stop then, and to report what it has); stdin
        # stays open meanwhile: its end would tell a client to stop at once.
        timers = [threading.Timer(timeout, self._stop, args=(w,)) for w in self._workers]
        for timer in timers:
            timer.start()
        reports = []
        for worker in self._workers:
            assert worker.stdin is not None and worker.stdout is not None
            line = worker.stdout.readline()
            worker.stdin.close()
            worker.wait(30)
            report = json.loads(line)
            report["latencies_by_seq"] = [
                (seq, (arrived - sent[seq]) * 1000) for seq, arrived in report.pop("arrivals")
            ]
            report["latencies_ms"] = [ms for _, ms in report["latencies_by_seq"]]
            reports.append(report)
        for timer in timers:
            timer.cancel()
        return reports
