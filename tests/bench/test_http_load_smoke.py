"""The HTTP load benchmark runs with tiny parameters; its numbers come from `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.processes import ROOT


def test_http_load_benchmark_runs_and_records_its_figures(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.http_load", "--connections", "5", "--seconds", "1"]
        + ["--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(path.read_text()) for path in tmp_path.glob("http-load-*.json")]
    assert record["benchmark"] == "http_load" and record["machine"]["cores"] >= 1
    assert record["errors"] == {}
    assert record["duplicate_desks_from_retries"] == 0
    assert record["desks_stored"] == record["posts_acknowledged"] + 1  # and the seed
    assert record["idle_connections_closed"] == "5/5"
