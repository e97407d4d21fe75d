"""End to end on `desks up`: K dashboards, W writes/s over HTTP, write-to-receipt latency.

    python -m bench.e2e --desks 100000 --dashboards 100 --rates 100,200,400,800 --seconds 10

`desks up` runs on a store file prefilled with --desks desks (their events logged). For each
write rate W, K lean clients (bench/lean_client.py) connect and --writers threads POST at W
writes/s in total for --seconds, each on its own keep-alive connection. Write-to-receipt runs
from the write's wall time (the event's `at`, stamped at commit) to a client holding the event,
over every event of one connection in --sample-every. Events keep up at W when every client
got every event within --patience seconds of the last write and p99 stayed under 1 s.

`--client c` holds the dashboards with the C client (bench/lean_client.c) instead: at 400
writes/s to 100 dashboards the Python clients take about a third of a core of the two, which
a dashboard on another machine would not; the write's `at` of each seq is then read from the
log after the step, and arrivals (CLOCK_MONOTONIC) are put on the wall clock by the offset
between the two clocks.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import cclient, lean_client
from bench.common import RESULTS, free_port, percentiles, record
from bench.store import HISTORY, Up, prefill, request
from desks.event_log import EventLog
from desks.settings import Settings
from desks.store import open_store

KEEP_UP_P99_MS = 1000.0


def write_at(port: int, rate: float, seconds: float, writers: int) -> tuple[int, float, list[str]]:
    """POST at `rate` per second in all for `seconds`; return (acknowledged, elapsed, errors)."""
    total = round(rate * seconds)
    acknowledged, errors = [0] * writers, []
    start = time.monotonic() + 0.1

    def writer(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for n in range(index, total, writers):
            delay = start + n / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # open loop: behind schedule, it sends at once
            try:
                body = {"name": f"E2E {n}", "width": 100, "height": 50}
                status, _, _ = request(connection, "POST", "/api/desks", body)
            except (OSError, http.client.HTTPException) as error:
                errors.append(type(error).__name__)
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                continue
            if status == 201:
                acknowledged[index] += 1
            else:
                errors.append(str(status))
        connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(acknowledged), time.monotonic() - start, errors


def step(up: Up, ws_port: int, rate: float, args: Any, path: str) -> dict[str, Any]:
    """One write rate: dashboards connected, writes paced, what the dashboards received."""
    if args.client == "c":
        return c_step(up, ws_port, rate, args, path)
    events = round(rate * args.seconds)
    dashboards = lean_client.Clients(
        ws_port,
        args.dashboards,
        events,
        args.processes,
        args.sample_every,
        by_wall_time=True,
        patience=args.seconds + args.patience,
    )
    dashboards.connect()
    dashboards.go()
    time.sleep(0.5)
    acknowledged, elapsed, errors = write_at(up.port, rate, args.seconds, args.writers)
    reports = dashboards.finish(timeout=args.seconds + args.patience + 120)
    return figures(rate, args, acknowledged, elapsed, errors, reports)


def figures(
    rate: float,
    args: Any,
    acknowledged: int,
    elapsed: float,
    errors: list[str],
    reports: list[dict[str, Any]],
) -> dict[str, Any]:
    """What one write rate gave: writes acknowledged, deliveries, write-to-receipt latency."""
    delivered = sum(report["frames"] for report in reports)
    latency = percentiles([ms for report in reports for ms in report["latencies_ms"]])
    expected = args.dashboards * acknowledged
    return {
        "rate": rate,
        "writes_acknowledged": acknowledged,
        "write_rate_achieved": round(acknowledged / elapsed, 1),
        "errors": len(errors),
        "delivered": delivered,
        "expected": expected,
        "write_to_receipt_ms": latency,
        "kept_up": delivered == expected and latency["p99"] < KEEP_UP_P99_MS,
        "client_cpu_s": round(sum(report["cpu_s"] for report in reports), 2),
    }


class LoggedAt(dict[int, float]):
    """seq -> when its write committed (the event's `at`), on the monotonic clock: read from
    the log when first asked for (every event a client got is in the log by then)."""

    def __init__(self, log: EventLog, wall_minus_monotonic: float) -> None:
        super().__init__()
        self._log = log
        self._offset = wall_minus_monotonic

    def __missing__(self, seq: int) -> float:
        for event in self._log.after(seq - 1, 1):
            if event.seq == seq:
                self[seq] = datetime.fromisoformat(event.at).timestamp() - self._offset
                return self[seq]
        raise KeyError(seq)


def c_step(up: Up, ws_port: int, rate: float, args: Any, path: str) -> dict[str, Any]:
    """`step` with the dashboards in C: latencies from each seq's `at`, read from the log."""
    store = open_store(Settings(embedded_path=path, embedded_history_size=HISTORY))
    log = EventLog(store.database)
    try:
        head = log.head()
        writes = round(rate * args.seconds)
        dashboards = cclient.CClients(
            ws_port, args.dashboards, head + writes, args.processes, args.sample_every
        )
        dashboards.connect()
        dashboards.go()
        time.sleep(0.5)
        acknowledged, elapsed, errors = write_at(up.port, rate, args.seconds, args.writers)
        # The clients stop when told, after --patience: they cannot know how many will come.
        written = LoggedAt(log, time.time() - time.monotonic())
        reports = dashboards.finish(written, timeout=args.patience)
    finally:
        store.close()
    return figures(rate, args, acknowledged, elapsed, errors, reports)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e")
    parser.add_argument("--desks", type=int, default=0, help="stored before the run")
    parser.add_argument("--dashboards", type=int, default=100)
    parser.add_argument("--rates", default="100,200,400,800", help="writes/s, ascending")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--writers", type=int, default=8, help="HTTP writer threads")
    parser.add_argument("--processes", type=int, default=2, help="dashboard client processes")
    parser.add_argument("--sample-every", type=int, default=5)
    parser.add_argument(
        "--client", choices=("python", "c"), default="python", help="the dashboards' client"
    )
    parser.add_argument("--patience", type=float, default=10, help="seconds after the writes")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    steps = []
    with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
        path = str(Path(directory) / "store.sqlite3")
        prefill(path, args.desks)
        ws_port = free_port()
        up = Up(path, free_port(), ws_port)
        try:
            for rate in [float(r) for r in args.rates.split(",")]:
                result = step(up, ws_port, rate, args, path)
                print(result, flush=True)
                steps.append(result)
                if not result["kept_up"]:
                    break  # beyond the sustainable rate: higher ones only queue more
        finally:
            up.close()
    sustained = max((s["rate"] for s in steps if s["kept_up"]), default=None)
    figures = {
        "parameters": {k: v for k, v in vars(args).items() if k != "results"},
        "steps": steps,
        "highest_rate_kept_up": sustained,
    }
    record("e2e", f"e2e-{args.desks}-{args.dashboards}", figures, args.results)


if __name__ == "__main__":
    main()
