"""Every service's /metrics, scraped from `desks up` as Prometheus would."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port, wait_until
from tests.processes import Running


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every sample at `url` by (name, sorted labels)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def post(url: str, body: dict) -> None:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201


def test_desks_up_exposes_api_watcher_and_broadcaster_metrics(tmp_path):
    running = Running(free_port(), tmp_path / "up.log")
    try:
        running.wait_ready()
        for n in range(3):
            post(f"{running.api}/api/desks", {"name": f"D{n}", "width": 1, "height": 1})
        metrics = running.ws.replace("ws://", "http://") + "metrics"

        def events_sent():
            return scrape(metrics).get(("desks_broadcaster_events_total", ()), 0) == 3

        wait_until(events_sent, timeout=20)
        live = scrape(metrics)
        assert live[("desks_watcher_events_logged_total", (("type", "desk_created"),))] == 3
        assert live[("desks_watcher_write_to_log_seconds_count", ())] == 3
        assert live[("desks_watcher_role", (("desks_watcher_role", "active"),))] == 1
        assert live[("desks_watcher_checkpoint_age_seconds", ())] >= 0
        assert live[("desks_broadcaster_head_seq", ())] == 3
        assert live[("desks_broadcaster_clients", ())] == 0
        assert live[("desks_watcher_head_seq", ())] == 3
        # The API runs in gunicorn workers: /metrics adds them up.
        api = scrape(f"{running.api}/metrics")
        created = ("method", "POST"), ("route", "/api/desks"), ("status", "201")
        assert api[("desks_api_requests_total", created)] == 3
        timed = ("method", "POST"), ("route", "/api/desks")
        assert api[("desks_api_request_duration_seconds_count", timed)] == 3
    finally:
        running.close()
