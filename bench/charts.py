"""Charts of the latest results (PNG, matplotlib: `pip install -e '.[bench]'`).

    python -m bench.charts   # reads bench/results/*.json, writes bench/results/*.png

- fanout-deliveries.png: flood deliveries per second against K, ours beside the baselines;
- fanout-latency.png: paced publish-to-receipt p50 and p99 against K, the same three servers;
- store-write-cost.png: POST p50/p99 and write-to-client p50 against the number of stored desks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.common import RESULTS

COLORS = {"ours": "#0b5cad", "broadcast": "#1e7d32", "sequential": "#b3261e"}


def load(results: Path, prefix: str) -> list[dict[str, Any]]:
    """Return the records whose file names start with `prefix`, oldest first."""
    files = sorted(results.glob(f"{prefix}*.json"), key=lambda path: path.stat().st_mtime)
    return [json.loads(path.read_text()) for path in files]


def fanout_runs(results: Path, mode: str) -> list[dict[str, Any]]:
    """Return the newest run of each (server, K) in `mode`."""
    newest: dict[tuple[str, int], dict[str, Any]] = {}
    for entry in load(results, f"fanout-{mode}-"):
        for run in entry["runs"]:
            newest[(run["server"], run["clients"])] = run
    return list(newest.values())


def paced_rates(runs: list[dict[str, Any]]) -> set[tuple[int, float]]:
    """Return the (K, events per second) each paced run was measured at."""
    return {(run["clients"], run["rate"]) for run in runs}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.charts")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    written = []
    flood = fanout_runs(args.results, "flood")
    if flood:
        figure, axes = pyplot.subplots(figsize=(7, 4))
        for server, color in COLORS.items():
            points = sorted(
                (r["clients"], r["deliveries_per_s"]) for r in flood if r["server"] == server
            )
            if points:
                axes.plot(*zip(*points, strict=True), marker="o", color=color, label=server)
        axes.set(
            xscale="log",
            xlabel="connections (K)",
            ylabel="deliveries / s",
            title="Fan-out, flood: deliveries per second",
        )
        axes.legend()
        written.append(save(figure, args.results / "fanout-deliveries.png"))
    paced = fanout_runs(args.results, "paced")
    if paced:
        figure, axes = pyplot.subplots(figsize=(7, 4))
        for server, color in COLORS.items():
            runs = sorted((r for r in paced if r["server"] == server), key=lambda r: r["clients"])
            if runs:
                ks = [r["clients"] for r in runs]
                axes.plot(
                    ks,
                    [r["latency_ms"]["p50"] for r in runs],
                    "o--",
                    color=color,
                    label=f"{server} p50",
                )
                axes.plot(
                    ks,
                    [r["latency_ms"]["p99"] for r in runs],
                    "o-",
                    color=color,
                    label=f"{server} p99",
                )
        axes.set(
            xscale="log",
            yscale="log",
            xlabel="connections (K)",
            ylabel="publish to receipt (ms)",
            title="Fan-out, paced: latency ("
            + ", ".join(f"K={k:,} at {rate:g}/s" for k, rate in sorted(paced_rates(paced)))
            + ")",
        )
        axes.legend(fontsize="small")
        written.append(save(figure, args.results / "fanout-latency.png"))
    writes = {e["parameters"]["stored_desks"]: e for e in load(args.results, "store-writes-")}
    if writes:
        figure, axes = pyplot.subplots(figsize=(7, 4))
        sizes = sorted(writes)
        for label, key, part in (
            ("POST p50", "post_ms", "p50"),
            ("POST p99", "post_ms", "p99"),
            ("write to client p50", "write_to_client_ms", "p50"),
        ):
            axes.plot(
                [max(s, 1) for s in sizes], [writes[s][key][part] for s in sizes], "o-", label=label
            )
        axes.set(
            xscale="log",
            xlabel="stored desks (0 drawn at 1)",
            ylabel="ms",
            title="Per-write cost against store size (embedded store)",
        )
        axes.legend()
        written.append(save(figure, args.results / "store-write-cost.png"))
    print("\n".join(str(path) for path in written) or "no results to chart")


def save(figure: Any, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    main()
