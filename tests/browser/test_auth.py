"""The dashboard with authentication on: it asks for a token, uses it, and says when it expires."""

from __future__ import annotations

from playwright.sync_api import expect

from desks.auth import mint
from desks.settings import Settings
from tests.browser.test_dashboard import ROWS, create_in_form
from tests.conftest import running_system

SECRET = "b" * 32


def test_the_dashboard_asks_for_a_token_and_works_with_it(browser):
    settings = Settings(embedded_path=":memory:", api_port=0, broadcaster_port=0, jwt_secret=SECRET)
    with running_system(settings) as system:
        context = browser.new_context()
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(system.api_url + "/")
            expect(page.locator("#status")).to_have_attribute("data-state", "unauthorized")
            expect(page.locator("#token-message")).to_contain_text("a bearer token is required")

            # A read-only token: the table loads and goes live; creating a desk is refused (403).
            page.get_by_label("Bearer token").fill(mint(SECRET, ["desks:read"], 60))
            page.get_by_role("button", name="Use token").click()
            expect(page.locator("#status")).to_have_attribute("data-state", "live")
            create_in_form(page, "Mesa", "180", "90")
            expect(page.locator("#form-message")).to_contain_text("lacks the scope desks:write")

            # A token that may write, and expires in 3 s: it writes, then the broadcaster closes
            # the connection with 4401 and the page asks for a new one.
            page.locator("#auth summary").click()
            page.get_by_label("Bearer token").fill(mint(SECRET, ["desks:read", "desks:write"], 3))
            page.get_by_role("button", name="Use token").click()
            expect(page.locator("#status")).to_have_attribute("data-state", "live")
            create_in_form(page, "Mesa", "180", "90")
            expect(page.locator(ROWS)).to_have_count(1)
            expect(page.locator("#status")).to_have_attribute(
                "data-state", "unauthorized", timeout=15_000
            )
            expect(page.locator("#token-message")).to_contain_text("The token expired")
            assert errors == []
        finally:
            context.close()
