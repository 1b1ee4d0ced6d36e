"""Answers people ask for, over HTTP on both stores: what changed between two days or two
instants, search, CSV, the evidence behind a view, and the list filters."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from api import create_app
from registry.seed import seed

AGREEMENT = "ru-eu-readmission-agreement"
SOFIA = "ru-eu-migration-dialogue-sofia-2018"
DIALOGUE = "ru-eu-migration-dialogue"
BORDER_GUARD = "fsb-border-guard-service"
OLD_FRONTEX = "European Agency for the Management of Operational Cooperation"


class Client:
    def __init__(self, http: FlaskClient, token: str) -> None:
        self.http = http
        self.auth = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, status: int = 200, **options: Any) -> Any:
        response = self.http.get(path, **options)
        assert response.status_code == status, response.get_data(as_text=True)
        if status >= 400:
            assert response.mimetype == "application/problem+json"
        return response.get_json() if response.mimetype.endswith("json") else response

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.http.post(path, json=body, headers=self.auth)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json()

    def event(self, record: str, type_name: str) -> dict[str, Any]:
        [envelope] = self.get(f"/v1/events?record={record}&type={type_name}")["items"]
        return envelope  # type: ignore[no-any-return]

    def head_instant(self) -> str:
        return str(self.get("/v1/audit/head")["recorded_at"])


@pytest.fixture
def client(store_url: str) -> Iterator[Client]:
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    seed(registry)
    yield Client(app.test_client(), registry.tokens.create("editor", "editor"))
    registry.close()


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    return list(csv.DictReader(io.StringIO(response.data.decode("utf-8"), newline="")))


# Changes between two days

def test_what_changed_between_2006_and_2008(client: Client) -> None:
    signed, in_force = client.event(AGREEMENT, "signed"), client.event(AGREEMENT, "entered_into_force")
    page = client.get("/v1/changes?from=2006-01-01&to=2008-01-01")
    assert (page["from"], page["to"]) == ("2006-01-01", "2008-01-01")

    # The readmission agreement went from an uncertain signing to being in force.
    [agreement] = [item for item in page["items"] if item["id"] == AGREEMENT]
    assert agreement["kind"] == "agreement"
    assert (agreement["before"]["status"], agreement["after"]["status"]) == (None, "in_force")
    assert agreement["before"]["uncertain"] == [signed["id"]]
    assert agreement["changed"] == ["entered_into_force", "evidence", "signed", "status", "uncertain"]
    assert agreement["events"] == [signed["id"], in_force["id"]]
    # Records that did not change are left out: the Sofia session lies ahead, the EU was active throughout.
    assert SOFIA not in ids(page) and "eu" not in ids(page)
    assert ids(page) == sorted(ids(page))

    # A record absent from its list on the first day has no `before`.
    established = client.event(BORDER_GUARD, "established")
    [border_guard] = client.get("/v1/changes?from=2003-01-01&to=2003-12-31&kind=organisation")["items"]
    assert (border_guard["id"], border_guard["before"]) == (BORDER_GUARD, None)
    assert border_guard["after"]["status"] == "active"
    assert border_guard["events"] == [established["id"]]

    # The same day twice: nothing changed.
    assert client.get("/v1/changes?from=2008-01-01&to=2008-01-01")["items"] == []


def test_changes_filter_by_kind_and_party_and_page(client: Client) -> None:
    everything = client.get("/v1/changes?from=2000-01-01&to=2019-01-01")
    assert len(everything["items"]) >= 5
    kinds = {item["kind"] for item in everything["items"]}
    agreements = client.get("/v1/changes?from=2000-01-01&to=2019-01-01&kind=agreement")
    assert ids(agreements) == [i["id"] for i in everything["items"] if i["kind"] == "agreement"] and len(kinds) > 1
    # The EU, in any case, as a party: the agreement, the committee and the dialogue, not the protocols.
    with_eu = ids(client.get("/v1/changes?from=2000-01-01&to=2019-01-01&party=EU"))
    assert with_eu == ids(client.get("/v1/changes?from=2000-01-01&to=2019-01-01&party=eu"))
    assert AGREEMENT in with_eu and "ru-eu-readmission-implementing-protocols" not in with_eu
    # Pages of one, walked with the cursor, give the whole answer.
    walked, cursor = [], ""
    for _ in range(len(everything["items"]) + 1):
        page = client.get(f"/v1/changes?from=2000-01-01&to=2019-01-01&limit=1{cursor}")
        walked.extend(ids(page))
        if page["next"] is None:
            break
        cursor = f"&cursor={page['next']}"
    assert walked == ids(everything)


# Changes between two instants

def test_what_the_registry_learnt_between_two_instants(client: Client) -> None:
    before = client.head_instant()
    in_force, held = client.event(AGREEMENT, "entered_into_force"), client.event(SOFIA, "held")
    # An editor corrects the entry into force and retracts the Sofia session.
    correction = client.post(f"/v1/events/{in_force['id']}/corrections", {
        "changes": {"valid": "2007-07-01"}, "reason": "the official journal gives 1 July",
        "sources": [{"title": "Official Journal notice"}]})
    retraction = client.post(f"/v1/events/{held['id']}/retractions", {"reason": "no such session"})
    after = client.head_instant()

    page = client.get(f"/v1/changes?known_from={before}&known_to={after}&as_of=2019-01-01")
    assert (page["known_from"], page["known_to"], page["as_of"]) == (before, after, "2019-01-01")
    by_id = {item["id"]: item for item in page["items"]}
    assert set(by_id) == {AGREEMENT, SOFIA, DIALOGUE}
    # The correction moved the entry into force; the view's evidence follows it.
    agreement = by_id[AGREEMENT]
    assert (agreement["before"]["entered_into_force"], agreement["after"]["entered_into_force"]) == (
        "2007-06-01", "2007-07-01")
    assert agreement["changed"] == ["entered_into_force", "evidence"]
    assert agreement["events"] == [correction["id"]]
    # The retracted session is no longer in the meetings' list.
    sofia = by_id[SOFIA]
    assert sofia["before"]["status"] == "held" and sofia["after"] is None
    assert sofia["events"] == [retraction["id"]]
    # Its dialogue no longer counts it among its meetings: the retraction explains that too.
    dialogue = by_id[DIALOGUE]
    assert dialogue["changed"] == ["meetings"] and dialogue["events"] == [retraction["id"]]
    assert (dialogue["before"]["meetings"]["held"], dialogue["after"]["meetings"]["held"]) == (1, 0)

    # As of a day before either event, the correction changed nothing yet.
    early = client.get(f"/v1/changes?known_from={before}&known_to={after}&as_of=2007-06-15")
    assert AGREEMENT in ids(early)  # in force on 1 June as first known, not yet as corrected
    assert ids(client.get(f"/v1/changes?known_from={before}&known_to={after}&as_of=2005-01-01")) == []


@pytest.mark.parametrize("query", [
    "", "?from=2006-01-01", "?to=2006-01-01", "?known_from=2020-01-01T00:00:00Z",
    "?from=2006-01-01&to=2007-01-01&known_from=2020-01-01T00:00:00Z&known_to=2021-01-01T00:00:00Z",
    "?from=2006-01-01&known_to=2021-01-01T00:00:00Z",
    "?from=2008-01-01&to=2007-01-01",
    "?known_from=2021-01-01T00:00:00Z&known_to=2020-01-01T00:00:00Z",
    "?from=2006&to=2007-01-01", "?from=2006-01-01&to=2007-01-01&kind=treaty",
    "?from=2006-01-01&to=2007-01-01&party=E%21", "?from=2006-01-01&to=2007-01-01&cursor=%%%",
])
def test_changes_need_exactly_one_whole_pair_in_order(client: Client, query: str) -> None:
    client.get(f"/v1/changes{query}", status=400)


@pytest.mark.parametrize(("query", "conflict"), [
    ("?known_from=2020-01-01T00:00:00Z&known_to=2021-01-01T00:00:00Z&known_at=2020-06-01T00:00:00Z", "known_at"),
    ("?from=2006-01-01&to=2011-01-01&as_of=2008-01-01", "as_of"),
])
def test_changes_refuse_the_point_their_pair_replaces(client: Client, query: str, conflict: str) -> None:
    """Two instants are the system times compared: a known_at beside them was silently ignored (and
    as_of beside two days). The page, whose links keep both, compares the pair and links the API without it."""
    problem = client.get(f"/v1/changes{query}", status=400)
    assert list(problem["errors"]) == [conflict] and conflict in problem["detail"]
    page = client.get(f"/changes{query}")
    assert page.status_code == 200, page.get_data(as_text=True)[:300]
    link = re.search(r'href="(/v1/changes\?[^"]+)">JSON', page.get_data(as_text=True))
    assert link is not None and f"{conflict}=" not in link.group(1)
    client.get(html.unescape(link.group(1)))  # the page's JSON link answers 200


# Search

def test_search_finds_a_renamed_organisation_by_its_name_as_of_the_day(client: Client) -> None:
    # Today FRONTEX is the European Border and Coast Guard Agency: a title match, listed first.
    today = client.get("/v1/search?q=coast+guard+agency")
    assert ids(today)[0] == "frontex"
    assert today["items"][0]["matched"][0] == "title"
    assert today["items"][0]["title"] == "European Border and Coast Guard Agency"
    # In 2019 it had its old name: the new one is found only in the source that mentions it.
    in_2019 = client.get("/v1/search?q=coast+guard+agency&as_of=2019-01-01")
    frontex = next(item for item in in_2019["items"] if item["id"] == "frontex")
    assert frontex["matched"] == ["source"] and frontex["title"].startswith(OLD_FRONTEX)
    old_name = client.get("/v1/search?q=operational+cooperation+management&as_of=2019-01-01")
    assert old_name["items"][0]["id"] == "frontex" and old_name["items"][0]["matched"][0] == "title"
    assert "title" not in next(i for i in client.get("/v1/search?q=operational+cooperation+management")["items"]
                               if i["id"] == "frontex")["matched"]

    # A rename recorded now is searchable at once, in any case and without its accents.
    client.post(f"/v1/organisations/{BORDER_GUARD}/events", {
        "type": "renamed", "valid": "2020-01-01", "name": "Service des garde-frontières de la Fédération"})
    renamed = client.get("/v1/search?q=FRONTIERES+federation&kind=organisation")
    assert ids(renamed) == [BORDER_GUARD]
    assert renamed["items"][0]["status"] == "active" and renamed["items"][0]["matched"] == ["title"]
    assert renamed["items"][0]["snippet"]
    assert client.get("/v1/search?q=FRONTIERES+federation&as_of=2019-12-31")["items"] == []


def test_search_reads_notes_and_sources_with_stemming(client: Client) -> None:
    # "meetings" finds the 17th meeting (its title) and the committee (its note says "meeting").
    found = client.get("/v1/search?q=meetings")
    assert ids(found)[0] == "ru-eu-readmission-joint-committee-17"
    committee = next(item for item in found["items"] if item["id"] == "ru-eu-readmission-joint-committee")
    assert committee["matched"] == ["note", "source"]
    # Title matches come first, then the rest, each group in id order; pages walk it whole.
    groups = [0 if item["matched"][0] == "title" else 1 for item in found["items"]]
    assert groups == sorted(groups)
    walked, cursor = [], ""
    for _ in range(len(found["items"]) + 1):
        page = client.get(f"/v1/search?q=meetings&limit=1{cursor}")
        walked.extend(ids(page))
        if page["next"] is None:
            break
        cursor = f"&cursor={page['next']}"
    assert walked == ids(found)
    # A source quote: Sofia; the Maastricht treaty's words for the EU.
    assert ids(client.get("/v1/search?q=Sofia")) == [SOFIA]
    assert "eu" in ids(client.get("/v1/search?q=high+contracting+parties"))
    # Known at an instant before the seed, nothing is found.
    assert client.get("/v1/search?q=Sofia&known_at=2000-01-01T00:00:00Z")["items"] == []


@pytest.mark.parametrize("query", ["", "?q=", "?q=+,;+", "?q=sofia&kind=treaty", "?q=sofia&cursor=abc"])
def test_search_needs_words(client: Client, query: str) -> None:
    client.get(f"/v1/search{query}", status=400)


# CSV

@pytest.mark.parametrize(("path", "name"), [
    ("/v1/agreements?as_of=2009-01-01", "agreements"),
    ("/v1/timeline?from=2006-01-01&to=2018-12-31", "timeline"),
    ("/v1/events?limit=50", "events"),
    ("/v1/changes?from=2006-01-01&to=2019-01-01", "changes"),
    ("/v1/search?q=migration", "search"),
])
@pytest.mark.parametrize("ask", ["format", "accept"])
def test_every_list_answer_is_also_csv(client: Client, path: str, name: str, ask: str) -> None:
    answer = client.get(path)
    asked = {"path": f"{path}&format=csv"} if ask == "format" else {"path": path, "headers": {"Accept": "text/csv"}}
    response = client.get(**asked)
    rows = read_csv(response)
    assert response.headers["Content-Disposition"] == f'attachment; filename="{name}.csv"'
    assert len(rows) == len(answer["items"]) > 0
    assert [row["id"] for row in rows] == [str(item["id"]) for item in answer["items"]]
    assert list(rows[0]) == list(answer["items"][0])  # the header row: the items' fields


def test_csv_cells_join_lists_and_keep_unicode(client: Client) -> None:
    [agreement] = [row for row in read_csv(client.get("/v1/agreements?as_of=2009-01-01&format=csv"))
                   if row["id"] == AGREEMENT]
    assert agreement["parties"] == "RU; eu"
    assert agreement["status"] == "in_force" and agreement["scope"] == ""
    events = read_csv(client.get("/v1/events?record=eu&format=csv"))
    assert "Russia–EU" in events[0]["sources"]  # an en dash, in UTF-8
    assert client.get("/v1/agreements?format=xml", status=400)


FORMULAS = {  # text a spreadsheet would run as a formula, as a hostile editor might record it
    "title": '=HYPERLINK("http://evil.example","Agreement on readmission")',
    "short_title": "+1+cmd|' /C calc'!A0",
}
THEMES = ["@SUM(1+1)", "=1+1", "visas"]
NOTES = {"signed": "-2+3+cmd|' /C calc'!A0", "entered_into_force": "\t=1+1", "terminated": "\r=1+1"}


def test_csv_cells_that_a_spreadsheet_would_run_as_formulas_start_with_a_quote(client: Client) -> None:
    # A hostile editor records an agreement whose title and short title are formulas, events
    # whose notes are, and a dialogue whose themes are.
    record = "ru-eu-visa-facilitation-agreement"
    registered = client.post("/v1/agreements", {"id": record, "agreement_type": "agreement", **FORMULAS,
                                                "parties": ["RU", "eu"], "note": "@cmd"})
    assert registered["title"] == FORMULAS["title"]
    client.post("/v1/dialogues", {"id": "ru-eu-visa-dialogue", "title": "Visa dialogue", "themes": THEMES})
    client.post("/v1/dialogues/ru-eu-visa-dialogue/events", {"type": "launched", "valid": "2007-06-01"})
    for type_name, valid in [("signed", "2006-05-25"), ("entered_into_force", "2007-06-01"),
                             ("terminated", "2023-03-02")]:
        client.post(f"/v1/agreements/{record}/events", {"type": type_name, "valid": valid, "note": NOTES[type_name]})

    # Every CSV answer carries them as text: the same characters after a single quote.
    answers = {
        "agreements": client.get("/v1/agreements?as_of=2009-01-01&format=csv"),
        "dialogues": client.get("/v1/dialogues?as_of=2009-01-01&format=csv"),
        "timeline": client.get(f"/v1/timeline?from=2006-01-01&to=2024-01-01&record={record}&format=csv"),
        "events": client.get(f"/v1/events?record={record}&format=csv"),
        "changes": client.get("/v1/changes?from=2006-01-01&to=2009-01-01&format=csv"),
        "search": client.get("/v1/search?q=readmission&format=csv", headers={"Accept": "text/csv"}),
    }
    rows = {name: read_csv(response) for name, response in answers.items()}
    [agreement] = [row for row in rows["agreements"] if row["id"] == record]
    assert agreement["title"] == "'" + FORMULAS["title"]
    assert agreement["short_title"] == "'" + FORMULAS["short_title"]
    assert agreement["parties"] == "RU; eu"
    [dialogue] = [row for row in rows["dialogues"] if row["id"] == "ru-eu-visa-dialogue"]
    assert dialogue["themes"] == "'@SUM(1+1); =1+1; visas"  # one cell: only its start could make a formula
    notes = {row["type"]: row["note"] for row in rows["events"]}
    assert notes == {"registered": "'@cmd", **{type_name: "'" + note for type_name, note in NOTES.items()}}
    assert {row["type"]: row["note"] for row in rows["timeline"]} == {
        type_name: "'" + note for type_name, note in NOTES.items()}
    [found] = [row for row in rows["search"] if row["id"] == record]
    assert found["title"] == "'" + FORMULAS["title"]
    [changed] = [row for row in rows["changes"] if row["id"] == record]
    assert changed["before"] == "" and changed["after"].startswith("{")  # a view, as JSON
    for name, table in rows.items():
        for row in table:
            for column, value in row.items():
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, column, value)

    # Ordinary values are as in JSON: ids, positions, versions, days, instants, valid times.
    for name, path in [("events", f"/v1/events?record={record}"),
                       ("timeline", f"/v1/timeline?from=2006-01-01&to=2024-01-01&record={record}")]:
        items = client.get(path)["items"]
        for column in ("id", "position", "version", "record", "valid", "valid_lower", "valid_upper", "recorded_at"):
            assert [row[column] for row in rows[name]] == [str(item[column] or "") for item in items], (name, column)
# List rules

def test_party_matches_a_country_code_in_any_case_or_an_organisation(client: Client) -> None:
    with_eu = ids(client.get("/v1/agreements?as_of=2009-01-01&party=eu"))
    assert with_eu == [AGREEMENT]
    assert ids(client.get("/v1/agreements?as_of=2009-01-01&party=EU")) == with_eu
    russia = ids(client.get("/v1/agreements?as_of=2009-01-01&party=RU"))
    assert russia == [AGREEMENT, "ru-eu-readmission-implementing-protocols"]
    assert ids(client.get("/v1/agreements?as_of=2009-01-01&party=ru")) == russia
    assert ids(client.get("/v1/channels?as_of=2009-01-01&party=FRONTEX")) == ["fsb-border-guard-service-frontex"]
    assert ids(client.get("/v1/agreements?as_of=2009-01-01&party=uk")) == []
    client.get("/v1/agreements?party=E%21", status=400)
    client.get("/v1/agreements?party=not%20a%20party", status=400)


@pytest.mark.parametrize(("collection", "status"), [
    ("agreements", "bogus"), ("agreements", "held"), ("meetings", "in_force"), ("organisations", "ACTIVE")])
def test_a_status_the_kind_never_has_is_400(client: Client, collection: str, status: str) -> None:
    problem = client.get(f"/v1/{collection}?status={status}", status=400)
    assert "status" in problem["errors"]


# Evidence

def test_a_view_carries_the_evidence_of_its_certain_events(client: Client) -> None:
    signed, in_force = client.event(AGREEMENT, "signed"), client.event(AGREEMENT, "entered_into_force")
    # Mid-2006 the signing is uncertain: no evidence yet, only its id in `uncertain`.
    assert client.get(f"/v1/agreements/{AGREEMENT}?as_of=2006-06-01")["evidence"] == []
    view = client.get(f"/v1/agreements/{AGREEMENT}?as_of=2009-01-01")
    assert view["evidence"] == [
        {"event": signed["id"], "type": "signed", "valid": "2006", "sources": signed["sources"]},
        {"event": in_force["id"], "type": "entered_into_force", "valid": "2007-06-01",
         "sources": in_force["sources"]},
    ]
    known = client.head_instant()

    # A correction's date and sources show in the evidence; as known before it, the old evidence stays.
    client.post(f"/v1/events/{signed['id']}/corrections", {
        "changes": {"valid": "2006-05-25", "place": "Sochi"}, "reason": "the summit",
        "sources": [{"title": "EU-Russia summit, Sochi, 25 May 2006"}]})
    corrected = client.get(f"/v1/agreements/{AGREEMENT}?as_of=2009-01-01")["evidence"][0]
    assert corrected["valid"] == "2006-05-25"
    assert corrected["sources"] == [*signed["sources"],
                                    {"title": "EU-Russia summit, Sochi, 25 May 2006", "url": None, "quote": None}]
    assert client.get(f"/v1/agreements/{AGREEMENT}?as_of=2009-01-01&known_at={known}")["evidence"] == \
        view["evidence"]

    # A retracted event is no evidence; lists and snapshots carry the same evidence as the view.
    client.post(f"/v1/events/{in_force['id']}/retractions", {"reason": "entered twice"})
    now = client.get(f"/v1/agreements/{AGREEMENT}?as_of=2009-01-01")
    assert [item["type"] for item in now["evidence"]] == ["signed"]
    listed = client.get("/v1/agreements?as_of=2009-01-01")["items"]
    assert next(item for item in listed if item["id"] == AGREEMENT)["evidence"] == now["evidence"]



def test_a_read_without_a_query_answers_as_with_its_defaults_written_out(client: Client) -> None:
    """Reads with no query string skip the query parser: the answer is the one the parser gives
    (but for `known_at`, which defaults to the instant of each request)."""
    agreements = client.get("/v1/agreements")
    assert len(agreements["items"]) >= 2
    assert without_known_at(agreements) == without_known_at(client.get("/v1/agreements?limit=100"))
    assert without_known_at(client.get("/v1/agreements?limit=1")["items"]) == without_known_at(agreements["items"][:1])

    view = client.get(f"/v1/agreements/{AGREEMENT}")
    assert without_known_at(view) == without_known_at(client.get(f"/v1/agreements/{AGREEMENT}?as_of={view['as_of']}"))
    assert client.get("/v1/search", 400)["errors"] == client.get("/v1/search?", 400)["errors"]  # `q` is required


def without_known_at(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {key: without_known_at(value) for key, value in answer.items() if key != "known_at"}
    if isinstance(answer, list):
        return [without_known_at(item) for item in answer]
    return answer
