"""Swagger UI renders from the API's own files: no request leaves the machine."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.sync_api import expect


def test_swagger_ui_works_offline(system, browser):
    context = browser.new_context()
    outside: list[str] = []

    def only_local(route):
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    try:
        page = context.new_page()
        page.goto(f"{system.api_url}/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("desks")
        expect(page.locator(".opblock-summary-path").first).to_be_visible()
        assert outside == []
    finally:
        context.close()
