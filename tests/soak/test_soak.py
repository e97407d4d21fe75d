"""A short soak in every test run: a few seeds of faults; `make soak` runs a long one."""

from __future__ import annotations

import pytest

from tests.embedded.conftest import REAL_URI
from tests.soak.harness import Soak

SECONDS = 6  # of faults per seed; `make soak` runs ten minutes


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    "backend", ["embedded", pytest.param("mongodb", marks=pytest.mark.mongodb)]
)
def test_soak_loses_repeats_and_reorders_nothing(tmp_path, seed, backend):
    if backend == "mongodb" and not REAL_URI:
        pytest.skip("DESKS_TEST_MONGODB_URI is not set: no real replica set to soak")
    report = Soak(tmp_path, seed, SECONDS, REAL_URI if backend == "mongodb" else None).run()
    print(report.summary())
    assert report.passed, report.summary()
    assert sum(report.acknowledged.values()) > 0 and sum(report.kills.values()) > 0
