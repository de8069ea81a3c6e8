"""/docs in Chromium, as a clinic's developer first meets the API: it must work offline."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser_fixtures import shot
from tests.conftest import IN_CI

try:
    from playwright.sync_api import Browser, Page, Route, expect
except ImportError:  # pragma: no cover - CI installs it
    if IN_CI:
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)


@pytest.fixture
def desk(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


def test_the_api_docs_render_without_the_internet(live_server: str, desk: Page) -> None:
    """Every file the page needs comes from dripcare itself; nothing is fetched elsewhere."""
    elsewhere: list[str] = []

    def only_local(route: Route, request: Any) -> None:
        if urlsplit(request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            elsewhere.append(request.url)
            route.abort()

    desk.route("**/*", only_local)
    desk.goto(f"{live_server}/docs")

    expect(desk.get_by_role("heading", name="dripcare")).to_be_visible()
    enroll = desk.locator(".opblock-summary", has_text="/api/v1/enrollments").first
    expect(enroll).to_be_visible()
    expect(desk.get_by_text("Authorize").first).to_be_visible()
    shot(desk, "api-docs")
    assert elsewhere == []
