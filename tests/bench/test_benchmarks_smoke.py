"""The fan-out, decoupling, end-to-end, failover and chart benchmarks run with tiny parameters;
the numbers come from `make bench`, never from a test."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.bench.conftest import run_benchmark
from tests.processes import ROOT


def test_fanout_flood_measures_every_server_and_compares_them(tmp_path):
    record = run_benchmark(
        "bench.fanout", tmp_path, "--mode", "flood", "--clients", "10", "--events", "20"
    )
    assert [run["server"] for run in record["runs"]] == ["ours", "broadcast", "sequential"]
    for run in record["runs"]:
        assert run["delivered"] == run["expected"] == 200  # every client got every event
        assert run["deliveries_per_s"] > 0 and run["latency_ms"]["p50"] >= 0
        assert run["idle_rss_per_connection_bytes"] is not None
    assert set(record["ratios"]["10"]) == {"deliveries_vs_broadcast", "deliveries_vs_sequential"}
    assert record["machine"]["libraries"]["websockets"]


def test_fanout_cost_times_each_variant_on_the_same_connections(tmp_path):
    record = run_benchmark(
        "bench.fanout_cost",
        tmp_path,
        *("--clients", "10", "--events", "30", "--rate", "200", "--measure-all"),
    )
    assert record["delivered"] == record["expected"] == 300  # every client got every event
    assert set(record["variants"]) == {"broadcast", "ours", "measure_all"}
    assert record["variants"]["broadcast"]["cpu_vs_broadcast"] == 1.0
    for variant in record["variants"].values():
        assert variant["cpu_us_per_delivery"] > 0 and variant["wall_ms_per_event"]["p50"] > 0


def test_fanout_paced_and_decoupling_and_charts_run(tmp_path):
    paced = run_benchmark(
        "bench.fanout",
        tmp_path / "paced",
        *("--mode", "paced", "--clients", "5", "--rate", "50", "--seconds", "0.2"),
        *("--servers", "ours"),
    )
    assert paced["runs"][0]["delivered"] == 50
    decoupled = run_benchmark(
        "bench.decoupling",
        tmp_path / "decoupling",
        "--dashboards",
        "4",
        "--posts",
        "5",
        "--rounds",
        "1",
    )
    assert decoupled["post_ms_with_0"]["p50"] > 0 and decoupled["post_ms_with_4"]["p50"] > 0
    pytest.importorskip("matplotlib", reason="matplotlib is the optional `bench` extra")
    charted = subprocess.run(
        [sys.executable, "-m", "bench.charts", "--results", str(tmp_path / "paced")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert charted.returncode == 0, charted.stderr
    assert (tmp_path / "paced" / "fanout-latency.png").stat().st_size > 1000


def test_end_to_end_runs_on_desks_up_with_a_prefilled_store(tmp_path):
    record = run_benchmark(
        "bench.e2e",
        tmp_path,
        *("--desks", "50", "--dashboards", "3", "--rates", "10,20", "--seconds", "0.5"),
        *("--patience", "3"),
    )
    assert [step["rate"] for step in record["steps"]] == [10, 20]
    for step in record["steps"]:
        assert step["delivered"] == step["expected"] == 3 * step["writes_acknowledged"]
        assert step["write_to_receipt_ms"]["p50"] > 0
    assert record["highest_rate_kept_up"] == 20


def test_takeover_records_how_long_a_standby_takes_over(tmp_path):
    record = run_benchmark("bench.takeover", tmp_path, "--ttl", "0.3", "--rounds", "1")
    assert record["takeover_s"]["max"] > 0 and record["parameters"]["rounds"] == 1


def test_fanout_over_several_processes_and_idle_dashboards_at_scale_run(tmp_path):
    several = run_benchmark(
        "bench.fanout",
        tmp_path / "several",
        *("--mode", "flood", "--clients", "20", "--events", "10", "--servers", "ours"),
        *("--ours-processes", "2"),
    )
    (run,) = several["runs"]
    assert run["server"] == "ours x2 processes"
    assert run["delivered"] == run["expected"] == 200
    if not (shutil.which("gcc") or shutil.which("cc")):
        pytest.skip("no C compiler for the C lean client (bench/lean_client.c)")
    in_c = run_benchmark(
        "bench.fanout",
        tmp_path / "in-c",
        *("--mode", "flood", "--clients", "20", "--events", "10", "--servers", "ours"),
        *("--client", "c", "--sample-every", "1"),
    )
    (run,) = in_c["runs"]
    assert run["delivered"] == run["expected"] == 200
    assert run["latency_ms"]["p99"] >= 0
    idle = run_benchmark(
        "bench.idle",
        tmp_path / "idle",
        *("--clients", "40", "--broadcasters", "2", "--client-processes", "2"),
        *("--rate", "10", "--seconds", "0.3", "--sample-every", "1", "--client-pause-us", "1000"),
    )
    assert idle["run"]["delivered"] == idle["run"]["expected"] == 120
    assert idle["run"]["pss_per_connection_bytes"] is not None
    assert idle["run"]["latency_ms"]["p99"] >= 0
    assert idle["run"]["latency_after_warmup_ms"]["p99"] >= 0  # events 3 and later
    in_c = run_benchmark(
        "bench.e2e",
        tmp_path / "e2e-c",
        *("--desks", "50", "--dashboards", "3", "--rates", "10", "--seconds", "0.5"),
        *("--patience", "2", "--client", "c", "--sample-every", "1"),
    )
    (step,) = in_c["steps"]
    assert step["delivered"] == step["expected"] == 3 * step["writes_acknowledged"] == 15
    assert 0 < step["write_to_receipt_ms"]["p50"] < 2000  # the log's `at` put on one clock
