"""A real headless Chromium (Debian's package) driven by Playwright, for the pages' e2e tests.

`playwright install` cannot download browsers here, so the browser is the system's
`/usr/bin/chromium` (override with REGISTRY_TEST_CHROMIUM). Every context records the
requests that leave the registry's origin, so a test can fail on any of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, Page, Playwright

CHROMIUM = os.environ.get("REGISTRY_TEST_CHROMIUM", "/usr/bin/chromium")


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])


@dataclass
class Visit:
    """One browser context on one origin, JavaScript on or off."""

    context: BrowserContext
    page: Page
    origin: str
    elsewhere: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def go(self, path: str) -> Page:
        self.page.goto(self.origin + path)
        return self.page


@contextmanager
def visit(browser: Browser, origin: str, *, javascript: bool,
          headers: dict[str, str] | None = None) -> Iterator[Visit]:
    context = browser.new_context(java_script_enabled=javascript, extra_http_headers=headers or {},
                                  viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)  # a busy machine may be slow; a hang still fails
    page = context.new_page()
    seen = Visit(context, page, origin)
    own = urlsplit(origin).netloc

    def on_request(request: object) -> None:
        url = request.url  # type: ignore[attr-defined]
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).netloc != own:
            seen.elsewhere.append(url)

    def on_failed(request: object) -> None:
        seen.failed.append(request.url)  # type: ignore[attr-defined]

    context.on("request", on_request)
    context.on("requestfailed", on_failed)
    try:
        yield seen
    finally:
        context.close()
