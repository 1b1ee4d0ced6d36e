"""Write PNGs of the main pages, as the README shows them: `make screenshots` (or `python screenshots.py DIR`).

Starts `registry serve` on a fresh seeded SQLite store and photographs each page in
headless Chromium, failing if any request leaves the registry's origin.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from browser_support import launch, visit
from e2e_harness import Server
from playwright.sync_api import sync_playwright

PAGES = [
    ("home", "/"),
    ("agreements", "/agreements?as_of=2010-06-01"),
    ("agreement-2006", "/agreements/ru-eu-readmission-agreement?as_of=2006-06-01"),
    ("agreement-2010", "/agreements/ru-eu-readmission-agreement?as_of=2010-06-01"),
    ("joint-committee", "/bodies/ru-eu-readmission-joint-committee"),
    ("timeline", "/timeline?from=2005-01-01"),
    ("search", "/search?q=readmission&as_of=2008-01-01"),
    ("changes", "/changes?from=2006-01-01&to=2011-01-01"),
    ("audit", "/audit"),
    ("docs", "/docs"),
    ("bad-parameter", "/agreements?as_of=2006-13-01"),
]


def main(target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        server = Server(str(Path(scratch) / "registry.sqlite"), Path(scratch) / "logs").start()
        try:
            with sync_playwright() as playwright:
                browser = launch(playwright)
                with visit(browser, server.url, javascript=True) as seen:
                    for name, path in PAGES:
                        page = seen.go(path)
                        if name == "timeline":
                            page.wait_for_selector("#timeline-chart[data-ready=true] .vis-item")
                        if name == "docs":
                            page.wait_for_selector("rapi-doc .endpoint-head")
                        page.screenshot(path=str(target / f"{name}.png"), full_page=name != "docs")
                        print(target / f"{name}.png")
                    if seen.elsewhere:
                        raise SystemExit(f"requests left the origin: {seen.elsewhere}")
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
