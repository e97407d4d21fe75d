"""Every store benchmark runs, with tiny parameters: speed is measured by `make bench`, not here."""

from __future__ import annotations

import pytest

from tests.bench.conftest import run_benchmark


@pytest.mark.parametrize(
    "args",
    [
        ["writes", "--desks", "50", "--writes", "20", "--writers", "2"],
        ["catchup", "--backlog", "50"],
        ["events", "--events", "300"],
        ["wakeup", "--writes", "5"],
        ["registry", "--desks", "120", "--reps", "1", "--by-page"],
    ],
)
def test_store_benchmark_runs_and_records_its_figures(tmp_path, args):
    record = run_benchmark("bench.store", tmp_path, *args)
    assert record["benchmark"] == f"store.{args[0]}"
