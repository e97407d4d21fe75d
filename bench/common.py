"""What every benchmark shares: the machine it ran on, percentiles, a process's CPU and
memory, free ports, and the JSON record under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
LIBRARIES = ("websockets", "pymongo", "flask", "gunicorn", "prometheus-client")


def machine() -> dict[str, Any]:
    """Describe this machine: cores, CPU model, Python, SQLite and library versions."""
    import sqlite3

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }


def commit() -> str | None:
    """Return the commit of the code measured (`+dirty` with uncommitted changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return None
    return f"{head}+dirty" if head and dirty else head or None


def _main_module() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else sys.argv[0]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50, p99 and max of `samples`, rounded to 2 decimals."""
    ordered = sorted(samples)
    if not ordered:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan")}
    cuts = (
        statistics.quantiles(ordered, n=100, method="inclusive")
        if len(ordered) > 1
        else ordered * 99
    )
    return {"p50": round(cuts[49], 2), "p99": round(cuts[98], 2), "max": round(ordered[-1], 2)}


def run_threads(target: Callable[[int], object], count: int) -> float:
    """Run target(0) ... target(count - 1) in threads at once; return the seconds they took."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds process `pid` has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def rss_bytes(pid: int) -> int:
    """Return the resident set size of process `pid` in bytes (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def process_tree(root: int) -> list[int]:
    """Return `root` and every process descended from it."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def pss_bytes(pids: list[int]) -> int:
    """Return the proportional set size of these processes in bytes (Linux smaps_rollup): a
    page they share counts once in all."""
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1]) * 1024
    return total


def run_queue_wait_s(pids: list[int]) -> float:
    """Return the seconds these processes' threads have spent runnable but waiting for a CPU
    (Linux schedstat): on a busy machine, the time other work took from them."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                total += int((task / "schedstat").read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return total / 1e9


def free_port() -> int:
    """Return a TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def record(benchmark: str, name: str, figures: dict[str, Any], results: Path = RESULTS) -> None:
    """Write `figures` with the machine and the command line under `results`, and print them."""
    entry = {
        "benchmark": benchmark,
        "at": datetime.now(UTC).isoformat(),
        "command": " ".join(["python -m", _main_module(), *sys.argv[1:]]),
        "commit": commit(),
        "machine": machine(),
        **figures,
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(entry, indent=2) + "\n")
    print(json.dumps({k: v for k, v in entry.items() if k != "machine"}))
