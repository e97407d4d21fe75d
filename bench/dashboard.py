"""The dashboard's first load in a real browser, at 0, 20,000 and 100,000 desks.

    python -m bench.dashboard --desks 0 20000 100000 [--reps 3]

For each size: a store prefilled with N desks (their events logged by a real watcher), served
by `desks up`; headless chromium (Debian's, through Playwright, as the browser tests drive it)
opens the dashboard and the clock runs from navigation to:
- the first desk row painted;
- the indicator `live` with the count equal to N (the whole registry loaded, subscribed);
then, live, a desk POSTed over HTTP until its row is in the table (the page still responsive
with N desks held), and a scroll to the end of the table until its last row is painted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, free_port, percentiles, record
from bench.store import Up, prefill

ROWS = "#desks tbody tr[data-id]"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def chromium_path() -> str | None:
    """Return the chromium to drive (DESKS_CHROMIUM, else Debian's on the PATH)."""
    return (
        os.environ.get("DESKS_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


def load_once(page: Any, url: str, desks: int) -> dict[str, float]:
    """Open the dashboard once; return the milliseconds to each milestone."""
    started = time.perf_counter()
    page.goto(url)
    if desks:
        page.wait_for_selector(ROWS, timeout=120_000)
    first_row = (time.perf_counter() - started) * 1000
    page.wait_for_function(
        "n => document.querySelector('#status').dataset.state === 'live'"
        " && document.querySelector('#count').textContent === `(${n})`",
        arg=desks,
        timeout=300_000,
        polling=20,
    )
    live = (time.perf_counter() - started) * 1000
    return {"first_row_ms": round(first_row, 1), "live_ms": round(live, 1)}


def live_write(page: Any, port: int, n: int) -> float:
    """POST a desk; return the milliseconds until the page shows it in its count."""
    before = page.eval_on_selector("#count", "e => e.textContent")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"name": f"bench live {n}", "width": 100, "height": 50})
    started = time.perf_counter()
    connection.request("POST", "/api/desks", body, {"Content-Type": "application/json"})
    assert connection.getresponse().status == 201
    page.wait_for_function("b => document.querySelector('#count').textContent !== b", arg=before)
    return (time.perf_counter() - started) * 1000


def scroll_to_end(page: Any) -> float:
    """Scroll the table to its end; return the milliseconds until its last row is painted."""
    started = time.perf_counter()
    page.evaluate(
        "() => { const s = document.getElementById('desks-scroll'); s.scrollTop = s.scrollHeight; }"
    )
    page.wait_for_function(
        "() => { const rows = document.querySelectorAll('#desks tbody tr[data-id]');"
        " const s = document.getElementById('desks-scroll');"
        " return rows.length > 0 && rows[rows.length - 1].getBoundingClientRect().bottom"
        " <= s.getBoundingClientRect().bottom + 2 && s.scrollTop > 0; }",
        polling="raf",
    )
    return (time.perf_counter() - started) * 1000


def bench_size(desks: int, reps: int, browser: Any) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="desks-bench-") as directory:
        path = os.path.join(directory, "store.sqlite3")
        prefill(path, desks)
        up = Up(path, free_port(), free_port())
        try:
            url = f"http://127.0.0.1:{up.port}/"
            loads, writes, scrolls = [], [], []
            for rep in range(reps):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                loads.append(load_once(page, url, desks + rep))
                writes.append(live_write(page, up.port, rep))
                if desks:
                    scrolls.append(scroll_to_end(page))
                context.close()
            memory = up.memory()
        finally:
            up.close()
    return {
        "desks": desks,
        "first_row_ms": percentiles([load["first_row_ms"] for load in loads]),
        "live_ms": percentiles([load["live_ms"] for load in loads]),
        "write_to_row_ms": percentiles(writes),
        "scroll_to_end_ms": percentiles(scrolls),
        "rss_mib": memory,
    }


def main() -> None:
    from playwright import sync_api

    parser = argparse.ArgumentParser(prog="python -m bench.dashboard")
    parser.add_argument("--desks", type=int, nargs="+", default=[0, 20_000, 100_000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    executable = chromium_path()
    if executable is None:
        raise SystemExit("chromium is not installed (apt-get install chromium, or DESKS_CHROMIUM)")
    sizes = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            for desks in args.desks:
                sizes.append(bench_size(desks, args.reps, browser))
                print(json.dumps(sizes[-1]), flush=True)
        finally:
            browser.close()
    figures = {"parameters": {"desks": args.desks, "reps": args.reps}, "sizes": sizes}
    record("dashboard", f"dashboard-{'-'.join(str(d) for d in args.desks)}", figures, args.results)


if __name__ == "__main__":
    main()
