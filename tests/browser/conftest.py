"""A real browser (Debian's chromium, driven by Playwright) on the whole system.

Playwright's own browser download is not used: chromium is launched by executable path
(`DESKS_CHROMIUM`, else `chromium` on PATH). `make test` installs Debian's chromium when it is
missing and it runs as root; elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher.system import System

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'"
)

# Where screenshots go: the test run's output directory (kept by CI as an artifact).
OUTPUT = Path(os.environ.get("DESKS_TEST_OUTPUT", "test-results")) / "browser"

# Flags for a headless chromium on a machine with no network but loopback.
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI containers
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Return the chromium executable to drive, if there is one."""
    configured = os.environ.get("DESKS_CHROMIUM")
    if configured:
        return configured
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Yield one headless chromium for the whole session."""
    executable = chromium_path()
    if executable is None:
        pytest.skip(
            "chromium is not installed: `make test` installs Debian's chromium when run as "
            "root; otherwise `apt-get install chromium` or set DESKS_CHROMIUM"
        )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


class Console:
    """Every console error and warning and every uncaught error of a page."""

    def __init__(self) -> None:
        self.messages: list[str] = []
        self.allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        """Expect messages matching `pattern` (e.g. a refused WebSocket while it restarts)."""
        self.allowed.append(re.compile(pattern))

    def unexpected(self) -> list[str]:
        return [m for m in self.messages if not any(p.search(m) for p in self.allowed)]


@pytest.fixture
def open_page(browser: Any, system: System) -> Iterator[Callable[..., Any]]:
    """Yield a factory of dashboard pages; after the test, none may have logged an error."""
    contexts: list[Any] = []
    console = Console()

    def open_dashboard(viewport: dict[str, int] | None = None, script: str | None = None) -> Any:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
        contexts.append(context)
        if script is not None:
            context.add_init_script(script)  # runs before the page's own scripts
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda message: (
                message.type in ("error", "warning")
                and console.messages.append(f"{message.type}: {message.text}")
            ),
        )
        page.on("pageerror", lambda error: console.messages.append(f"pageerror: {error}"))
        page.goto(system.api_url + "/")
        sync_api.expect(page.locator("#status")).to_have_attribute("data-state", "live")
        return page

    open_dashboard.console = console  # type: ignore[attr-defined]
    yield open_dashboard
    for context in contexts:
        context.close()
    assert console.unexpected() == [], "the dashboard logged errors or warnings"


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under the test output directory; return its path."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
