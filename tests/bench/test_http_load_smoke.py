"""The HTTP load benchmark runs with tiny parameters; its numbers come from `make bench`."""

from __future__ import annotations

from tests.bench.conftest import run_benchmark


def test_http_load_benchmark_runs_and_records_its_figures(tmp_path):
    record = run_benchmark("bench.http_load", tmp_path, "--connections", "5", "--seconds", "1")
    assert record["benchmark"] == "http_load"
    assert record["errors"] == {}
    assert record["duplicate_desks_from_retries"] == 0
    assert record["desks_stored"] == record["posts_acknowledged"] + 1  # and the seed
    assert record["idle_connections_closed"] == "5/5"
