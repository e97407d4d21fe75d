"""The write-path and dashboard benchmarks run, tiny: speed is measured by `make bench`."""

from __future__ import annotations

import pytest

from tests.bench.conftest import run_benchmark
from tests.browser.conftest import chromium_path


def test_write_path_benchmark_compares_desks_up_with_the_bare_app(tmp_path):
    record = run_benchmark("bench.write_path", tmp_path, "--reps", "1", "--writes", "40")
    (rep,) = record["reps"]
    assert rep["desks_up"]["post_per_s"] > 0 and rep["bare_app"]["post_per_s"] > 0
    assert record["ratios"] == [rep["ratio"]] and record["commit"]


def test_dashboard_benchmark_loads_the_page_in_a_browser(tmp_path):
    if chromium_path() is None:
        pytest.skip("chromium is not installed: `make test` installs it when run as root")
    record = run_benchmark("bench.dashboard", tmp_path, "--desks", "0", "150", "--reps", "1")
    sizes = {size["desks"]: size for size in record["sizes"]}
    assert sizes[150]["live_ms"]["p50"] >= sizes[150]["first_row_ms"]["p50"] > 0
    assert sizes[150]["rss_mib"]["Pss"] > 0
