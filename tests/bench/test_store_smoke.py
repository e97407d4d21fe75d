"""Every store benchmark runs, with tiny parameters: speed is measured by `make bench`, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.processes import ROOT


@pytest.mark.parametrize(
    "args",
    [
        ["writes", "--desks", "50", "--writes", "20", "--writers", "2"],
        ["catchup", "--backlog", "50"],
        ["events", "--events", "300"],
        ["wakeup", "--writes", "5"],
    ],
)
def test_store_benchmark_runs_and_records_its_figures(tmp_path, args):
    result = subprocess.run(
        [sys.executable, "-m", "bench.store", "--results", str(tmp_path), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(path.read_text()) for path in tmp_path.glob("store-*.json")]
    assert record["machine"]["cores"] >= 1
    assert record["benchmark"] == f"store.{args[0]}"
