"""The pages in a real browser against a real `registry serve` on the seed, SQLite and PostgreSQL.

Every story runs with JavaScript on and off, and fails if any request leaves the
registry's origin.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import pytest
import requests
from browser_support import Visit, launch, visit
from e2e_harness import Server
from playwright import sync_api as playwright_api

READMISSION = "/agreements/ru-eu-readmission-agreement"
SOFIA = "ru-eu-migration-dialogue-sofia-2018"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(params=[True, False], ids=["js", "no-js"])
def browse(request: pytest.FixtureRequest, browser: object, server: Server) -> Iterator[Visit]:
    with visit(browser, server.url, javascript=request.param) as seen:  # type: ignore[arg-type]
        seen.javascript = request.param  # type: ignore[attr-defined]
        yield seen
        assert seen.elsewhere == [], f"requests left the origin: {seen.elsewhere}"
        assert seen.failed == [], f"requests failed: {seen.failed}"


def choose_day(page: object, day: str) -> None:
    """Set the `as_of` picker and submit its form, as a person would."""
    page.fill("#as_of", day)  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.click("form.point button[type=submit]")  # type: ignore[attr-defined]


def summary(page: object) -> str:
    return page.inner_text("p.summary")  # type: ignore[attr-defined,no-any-return]


def test_readmission_agreement_through_the_years(browse: Visit) -> None:
    # The start page counts the agreements and links to them.
    page = browse.go("/")
    assert page.locator("h1").inner_text() == "Cooperation Registry"
    counts = page.locator("table tbody tr", has_text="Agreements").inner_text()
    assert re.search(r"Agreements\s+2\b", counts), counts
    page.click("nav >> text=Agreements")
    assert page.url.endswith("/agreements")
    page.click("text=Agreement on Readmission")
    assert page.url.endswith(READMISSION)

    # As of 1 June 2006 the signing is not certain: signed some day in 2006.
    choose_day(page, "2006-06-01")
    assert "as_of=2006-06-01" in page.url
    assert "no status yet" in summary(page)
    assert "Signed some day in 2006; not certain by 1 June 2006." in page.inner_text("section.uncertain-box")
    assert "No event is certain by this day." in page.inner_text("#evidence-h + p + p")

    # The day chosen is kept in every link: back to the list and in again.
    page.click("nav.crumbs >> text=Agreements")
    assert "as_of=2006-06-01" in page.url
    assert page.input_value("#as_of") == "2006-06-01"
    page.click("text=Agreement on Readmission")
    assert "as_of=2006-06-01" in page.url

    # As of 1 January 2008 it is in force, signed in 2006 and in force since 1 June 2007, with its source.
    choose_day(page, "2008-01-01")
    assert "in force" in summary(page)
    assert page.locator("section.uncertain-box").count() == 0
    fields = page.inner_text("dl.fields")
    assert re.search(r"Entered into force\s+on 1 June 2007", fields), fields
    evidence = page.inner_text("ol.evidence")
    assert "Entered into force" in evidence and "which entered into force on 1 June 2007" in evidence

    # As of 1 June 2010 its scope extends to nationals of third countries and stateless persons.
    choose_day(page, "2010-06-01")
    assert "nationals of third countries and stateless persons" in page.inner_text("dl.fields")
    assert "Scope extended" in page.inner_text("ol.evidence")


def test_known_at_before_a_correction_shows_the_old_value(browse: Visit, server: Server) -> None:
    # An editor corrects where the Sofia session took place.
    path = f"/meetings/{SOFIA}"
    before = server.get("/v1" + path).json()["place"]
    time.sleep(2.1)  # the picker counts whole seconds: a second before the correction must follow earlier writes
    history = server.get(f"/v1{path}/history").json()["items"]
    held = next(item for item in history if item["type"] == "held")
    place = f"Sofia, Bulgaria ({'js' if browse.javascript else 'no js'} {time.time():.0f})"  # type: ignore[attr-defined]
    done = server.post(f"/v1/events/{held['id']}/corrections",
                       {"changes": {"place": place}, "reason": f"the city's country was missing: {place}"},
                       token=server.tokens["editor"])
    assert done.status_code == 201, done.text
    corrected_at = dt.datetime.fromisoformat(done.json()["recorded_at"].replace("Z", "+00:00"))

    # Now the page shows the corrected place and says the event was corrected, and why.
    page = browse.go(path)
    assert place in page.inner_text("dl.fields")
    history_text = page.inner_text("ol.history")
    assert "[CORRECTED]" in history_text and f"the city's country was missing: {place}" in history_text

    # As known a second before the correction, the old place, and no correction yet.
    earlier = (corrected_at - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page.fill("#known_at", earlier)
    with page.expect_navigation():
        page.click("form.point button[type=submit]")
    assert "known_at=" in page.url
    assert re.search(rf"Place\s+{re.escape(before)}\s", page.inner_text("dl.fields") + "\n")
    assert place not in page.inner_text("ol.history")
    # The picker keeps the instant asked for; a browser writes whole minutes without ":00".
    assert page.input_value("#known_at") in (earlier, earlier.removesuffix(":00"))


def test_the_timeline_shows_the_joint_committees_meetings(browse: Visit) -> None:
    page = browse.go("/timeline")
    table = page.inner_text("table.timeline-table")
    assert "ru-eu-readmission-joint-committee-17" in table and "held in Brussels" in table
    assert "uncertain day" in table and "interval" in table

    # Filtered to the committee, the table holds the committee and its meetings.
    page.fill("#record", "ru-eu-readmission-joint-committee")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    rows = page.locator("table.timeline-table tbody tr")
    records = {rows.nth(i).locator("td").nth(1).inner_text() for i in range(rows.count())}
    assert records == {"ru-eu-readmission-joint-committee", "ru-eu-readmission-joint-committee-17"}

    chart = page.locator("#timeline-chart")
    if browse.javascript:  # type: ignore[attr-defined]
        # The chart draws one row per record; the uncertain establishment is a hatched range.
        page.wait_for_selector("#timeline-chart[data-ready=true] .vis-item")
        assert chart.is_visible()
        assert page.locator(".vis-item.uncertain.vis-range").count() == 1
        assert page.locator(".vis-item.vis-point.day").count() == 1
        assert page.locator(".vis-label").count() == 2
    else:
        assert not chart.is_visible()


def test_bad_parameters_get_a_helpful_page(browse: Visit) -> None:
    response = browse.page.goto(browse.origin + READMISSION + "?as_of=2006-13-01")
    assert response is not None and response.status == 400
    assert "text/html" in response.headers["content-type"]
    text = browse.page.inner_text("main")
    assert "as_of" in text and "YYYY-MM-DD" in text
    response = browse.page.goto(browse.origin + "/timeline?to=2001-01-01&from=2002-01-01")
    assert response is not None and response.status == 400
    response = browse.page.goto(browse.origin + "/agreements/no-such-agreement")
    assert response is not None and response.status == 404
    assert "no-such-agreement" in browse.page.inner_text("main")
    # A mistyped address is a page too, in the site's layout (the API's own paths stay JSON).
    response = browse.page.goto(browse.origin + "/agreemnts")
    assert response is not None and response.status == 404
    assert "text/html" in response.headers["content-type"]
    assert "/agreemnts" in browse.page.inner_text("main")
    assert browse.page.locator("header.site nav a", has_text="Timeline").count() == 1


def test_docs_and_audit_work_offline(browse: Visit, server: Server) -> None:
    page = browse.go("/docs")
    if browse.javascript:  # type: ignore[attr-defined]
        # RapiDoc renders every operation from /openapi.json in place of the plain table.
        page.wait_for_selector("rapi-doc .endpoint-head")
        heads = page.locator("rapi-doc .endpoint-head").all_inner_texts()
        assert len(heads) > 40
        assert any(re.match(r"GET\s+/v1/agreements\s", head) for head in heads), heads[:5]
        assert page.locator("#operations").is_hidden()
    else:
        assert page.locator("rapi-doc").count() == 0
        assert "/v1/timeline" in page.inner_text("#operations")
    page = browse.go("/audit")
    head = server.get("/v1/audit/head").json()
    assert head["hash"] in page.inner_text("main")
    assert "registry verify" in page.inner_text("main")


def test_docs_try_an_operation_with_the_token_given(browser: object, server: Server) -> None:
    with visit(browser, server.url, javascript=True) as seen:  # type: ignore[arg-type]
        page = seen.go("/docs")
        page.wait_for_selector("rapi-doc .endpoint-head")
        # Listing subscriptions needs an editor's token: without one the answer is 401.
        page.locator("rapi-doc .endpoint-head", has_text="/v1/subscriptions").first.click()
        operation = page.locator("rapi-doc .endpoint-body").first
        with page.expect_response(lambda answer: answer.url.endswith("/v1/subscriptions")) as refused:
            operation.locator("button", has_text="TRY").click()
        assert refused.value.status == 401
        # The token given under Authentication goes with the next try.
        page.fill("rapi-doc #security-scheme-bearer input", server.tokens["editor"])
        page.click("rapi-doc #security-scheme-bearer button")
        with page.expect_response(lambda answer: answer.url.endswith("/v1/subscriptions")) as answered:
            operation.locator("button", has_text="TRY").click()
        assert answered.value.status == 200
        assert answered.value.request.headers["authorization"] == f"Bearer {server.tokens['editor']}"
        playwright_api.expect(operation.get_by_text("OK:200")).to_be_visible()  # the answer is shown
        assert seen.elsewhere == [] and seen.failed == []


def test_pages_need_a_reader_token_when_reads_are_closed(server: Server, tmp_path_factory: pytest.TempPathFactory,
                                                         browser: object) -> None:
    closed = Server(server.database, tmp_path_factory.mktemp("closed"), {"REGISTRY_READ_AUTH": "on"}).start()
    try:
        refused = requests.get(closed.url + "/agreements", timeout=30)
        assert refused.status_code == 401 and "text/html" in refused.headers["Content-Type"]
        assert "reader token" in refused.text
        assert requests.get(closed.url + "/assets/pages.css", timeout=30).status_code == 401
        with visit(browser, closed.url, javascript=True,  # type: ignore[arg-type]
                   headers={"Authorization": f"Bearer {server.tokens['reader']}"}) as seen:
            page = seen.go("/agreements")
            assert "Agreement on Readmission" in page.inner_text("main")
            assert seen.elsewhere == [] and seen.failed == []
    finally:
        closed.stop()


def test_search_for_readmission_from_the_start_page(browse: Visit) -> None:
    page = browse.go("/?as_of=2008-01-01")
    page.fill("#q", "readmission")
    with page.expect_navigation():
        page.click("form.search button[type=submit]")
    assert "q=readmission" in page.url and "as_of=2008-01-01" in page.url
    results = page.inner_text("table.results")
    assert "ru-eu-readmission-agreement" in results and "ru-eu-readmission-joint-committee" in results
    # Title matches come first; the agreement is in force as of the chosen day.
    first = page.locator("table.results tbody tr").first.inner_text()
    assert "readmission" in first.lower()
    row = page.locator("table.results tbody tr", has_text="ru-eu-readmission-agreement").inner_text()
    assert "in force" in row
    page.click("table.results >> text=ru-eu-readmission-agreement")
    assert "as_of=2008-01-01" in page.url and "in force" in summary(page)


def test_changes_between_two_days(browse: Visit) -> None:
    page = browse.go("/changes")
    page.fill("#from", "2006-01-01")
    page.fill("#to", "2011-01-01")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    row = page.locator("table.changes tbody tr", has_text="ru-eu-readmission-agreement").inner_text()
    assert "entered into force" in row and "scope" in row
    assert "nationals of third countries" in row
    response = page.goto(browse.origin + "/changes?from=2011-01-01&to=2006-01-01")
    assert response is not None and response.status == 400


SCRIPT = re.compile(r'<script\b[^>]*\bsrc="([^"]+)"')
JS_BUDGET = 200 * 1024  # gzipped, per page, /docs too


@pytest.mark.parametrize("path", ["/", "/agreements", READMISSION, "/timeline", "/changes", "/search", "/audit",
                                  "/docs"])
def test_javascript_per_page_stays_within_budget(server: Server, path: str) -> None:
    import gzip

    page = server.get(path)
    assert page.status_code == 200
    sources = SCRIPT.findall(page.text)
    assert all(src.startswith("/assets/") for src in sources), sources
    total = sum(len(gzip.compress(server.get(src).content, 9)) for src in sources)
    assert total <= JS_BUDGET, (path, total)
    if path in ("/timeline", "/docs"):
        assert total > 100 * 1024  # the chart library, or the API reference, is there


def test_forms_leave_blank_fields_out_of_the_address_when_javascript_runs(browse: Visit) -> None:
    page = browse.go("/timeline")
    page.fill("#record", "ru-eu-readmission-agreement")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert "record=ru-eu-readmission-agreement" in page.url
    assert ("from=" in page.url) is not browse.javascript  # type: ignore[attr-defined]
    assert page.locator("table.timeline-table tbody tr").count() == 3
