"""Running a benchmark as `make bench` does, with tiny parameters, into a test's directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.processes import ROOT


def run_benchmark(module: str, results: Path, *args: str) -> dict[str, Any]:
    """Run `python -m <module> --results <results> <args>`; return the one record it wrote."""
    result = subprocess.run(
        [sys.executable, "-m", module, "--results", str(results), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    (record,) = [json.loads(path.read_text()) for path in results.glob("*.json")]
    assert record["machine"]["cores"] >= 1
    return record
