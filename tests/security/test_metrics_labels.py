"""Anyone can send any method to any path: /metrics keeps a closed set of series."""

from __future__ import annotations

import random
import string

from prometheus_client.parser import text_string_to_metric_families

from api.metrics import METHODS
from desks.metrics import exposition


def others() -> float:
    """Return how many requests were counted under the method `other`."""
    text = exposition()[0].decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "desks_api_requests_total" and sample.labels.get("method") == "other"
    )


def api_series() -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Return the API's series (name and labels) in this process's exposition."""
    text = exposition()[0].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("desks_api_")
    }


def test_invented_methods_and_paths_add_no_series(client):
    # One request of each kind first: a route and a path no route matches, each with a method
    # HTTP defines and one a caller invented (405 and 404: answered, counted).
    for method in ("GET", "XMETHOD"):
        for path in ("/api/desks", "/zz-nowhere"):
            client.open(path, method=method)
    before, counted = api_series(), others()
    rng = random.Random(21)
    for _ in range(2000):
        method = "X" + "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))
        client.open("/api/desks", method=method)
        client.open("/zz-" + "".join(rng.choices(string.ascii_lowercase, k=12)), method=method)
    assert api_series() == before
    assert others() == counted + 4000  # every one counted, under `other`
    # Other tests of this process count their requests too: each label a method HTTP defines.
    methods = {dict(labels)["method"] for _, labels in before if "method" in dict(labels)}
    assert "other" in methods and methods <= METHODS | {"other"}
