"""The seed timeline, loaded into a real store and read back on both time axes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from registry.seed import DOCUMENT, ESTABLISHMENTS, TIMELINE, seed
from registry.service import Registry

AGREEMENT = "ru-eu-readmission-agreement"
COMMITTEE = "ru-eu-readmission-joint-committee"
SOFIA = "ru-eu-migration-dialogue-sofia-2018"
OLD_FRONTEX = (
    "European Agency for the Management of Operational Cooperation at the External Borders "
    "of the Member States of the European Union"
)

# The body of seeds/migration-issues.txt that the seed cites, paragraph by paragraph.
SOURCE_TEXT = " ".join([
    "The signing in 2006 of the Agreement on Readmission (i.e. admitting back persons illegally staying in the "
    "territory of one country to the country where they arrived from) which entered into force on 1 June 2007, "
    "became a significant step in respect of combating illegal migration. As of 1 June 2010 the readmission "
    "procedure applies also to nationals of third countries and stateless persons. In order to effectively "
    "implement the Agreement, Russia and most of EU Member States signed relevant bilateral Implementing "
    "Protocols. Within the Russia-EU Joint Committee on readmission the Parties adopt recommendations for "
    "practical implementation of the Agreement. The 17th meeting of the Joint Committee took place on "
    "4 October 2017 in Brussels.",
    "In May 2011, Russia and the EU launched a Dialogue on Migration. The Dialogue provides for an exchange of "
    "views on legal migration, asylum and other forms of international protection, as well as discussing "
    "approaches to combating illegal migration and trafficking in human beings. To foster their interaction "
    "within the Dialogue the Parties hold regular expert sessions on issues of common interest are held. The "
    "most recent meeting in this format dedicated to issues of combating illegal migration took place on "
    "4-5 April 2018 in Sofia.",
    "The Border Guard Service of the Federal Security Service of the Russian Federation and the European Agency "
    "for the Management of Operational Cooperation at the External Borders of the Member States of the European "
    "Union (FRONTEX, the European Border and Coast Guard Agency as of today) established contacts in 2006.",
])

# The words of the document each dated fact rests on.
EVIDENCE = {
    ("ru-eu-readmission-agreement", "signed"): "signing in 2006",
    ("ru-eu-readmission-agreement", "entered_into_force"): "entered into force on 1 June 2007",
    ("ru-eu-readmission-agreement", "scope_extended"): "As of 1 June 2010",
    ("ru-eu-readmission-joint-committee-17", "held"): "4 October 2017 in Brussels",
    ("ru-eu-migration-dialogue", "launched"): "In May 2011",
    ("ru-eu-migration-dialogue-sofia-2018", "held"): "4-5 April 2018 in Sofia",
    ("fsb-border-guard-service-frontex", "contacts_established"): "established contacts in 2006",
    ("frontex", "renamed"): "European Border and Coast Guard Agency as of today",
}


@pytest.fixture
def seeded(registry: Registry) -> Registry:
    seed(registry)
    return registry


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def view(registry: Registry, record_id: str, as_of: str | None) -> dict[str, Any]:
    return registry.reader.view(record_id, day(as_of) if as_of else None, None)


def event_id(registry: Registry, record_id: str, type_name: str) -> str:
    items = registry.reader.events(0, 100, record=record_id, type=type_name)["items"]
    assert len(items) == 1
    return str(items[0]["id"])


def test_seeding_twice_writes_once(registry: Registry) -> None:
    # The first run writes every registration and every event of the timeline.
    expected = sum(1 + len(events) for _, _, _, events in TIMELINE) + len(ESTABLISHMENTS)
    assert seed(registry) == expected
    head = registry.reader.head()
    assert head["position"] == expected
    known_at = dt.datetime.fromisoformat(head["recorded_at"])
    before = registry.reader.snapshot(day("2020-01-01"), known_at)

    # A rerun replays each step by its idempotency key and writes nothing.
    assert seed(registry) == expected
    assert registry.reader.head() == head
    assert registry.reader.lag() == (expected, expected)
    registered = registry.reader.events(0, 1000, type="registered")["items"]
    assert sorted(e["record"] for e in registered) == sorted(record_id for _, record_id, _, _ in TIMELINE)
    assert registry.reader.snapshot(day("2020-01-01"), known_at) == before


def test_readmission_agreement_in_force_and_its_scope_extension(seeded: Registry) -> None:
    # Signed in 2006, in force from 1 June 2007: in force on 1 January 2009, scope not yet extended.
    agreement = view(seeded, AGREEMENT, "2009-01-01")
    assert agreement["status"] == "in_force"
    assert agreement["signed"] == "2006"
    assert agreement["entered_into_force"] == "2007-06-01"
    assert agreement["parties"] == ["RU", "eu"]
    assert agreement["scope"] == []
    assert agreement["uncertain"] == []

    # The day before entry into force it was only signed.
    assert view(seeded, AGREEMENT, "2007-05-31")["status"] == "signed"

    # The extension to third-country nationals was known all along but applies only from 1 June 2010.
    assert view(seeded, AGREEMENT, "2010-05-31")["scope"] == []
    assert view(seeded, AGREEMENT, "2010-06-01")["scope"] == [
        {"scope": "nationals of third countries and stateless persons", "articles": [], "valid": "2010-06-01"}
    ]


def test_signing_within_2006_is_uncertain_during_2006(seeded: Registry) -> None:
    signed = event_id(seeded, AGREEMENT, "signed")

    # "Signed in 2006": on 1 June 2006 it may or may not have happened yet.
    mid_2006 = view(seeded, AGREEMENT, "2006-06-01")
    assert mid_2006["status"] is None
    assert mid_2006["signed"] is None
    assert mid_2006["uncertain"] == [signed]

    # Before 2006 nothing is known to have happened; after it, the signing is certain.
    assert view(seeded, AGREEMENT, "2005-12-31")["uncertain"] == []
    after = view(seeded, AGREEMENT, "2007-01-01")
    assert (after["status"], after["signed"], after["uncertain"]) == ("signed", "2006", [])


def test_joint_committee_meetings_summary(seeded: Registry) -> None:
    # By 2018 the committee had held its 17th meeting, in Brussels.
    committee = view(seeded, COMMITTEE, "2018-01-01")
    assert committee["status"] == "active"
    assert committee["meetings"] == {
        "held": 1,
        "last_ordinal": 17,
        "last": {"id": f"{COMMITTEE}-17", "ordinal": 17, "valid": "2017-10-04", "place": "Brussels"},
        "next": None,
    }

    # The day before the meeting, none is on record as held.
    eve = view(seeded, COMMITTEE, "2017-10-03")["meetings"]
    assert (eve["held"], eve["last_ordinal"], eve["last"]) == (0, None, None)


def test_sofia_session_runs_over_two_days(seeded: Registry) -> None:
    # The expert session ran over 4 and 5 April 2018: in progress on both days, held after.
    statuses = {d: view(seeded, SOFIA, d)["status"] for d in ("2018-04-03", "2018-04-04", "2018-04-05", "2018-04-06")}
    assert statuses == {
        "2018-04-03": None,
        "2018-04-04": "in_progress",
        "2018-04-05": "in_progress",
        "2018-04-06": "held",
    }
    sofia = view(seeded, SOFIA, "2018-04-06")
    assert (sofia["held"], sofia["place"], sofia["topics"]) == (
        "2018-04-04/2018-04-05", "Sofia", ["combating illegal migration"])

    # The dialogue counts a session in progress as held.
    dialogue = view(seeded, "ru-eu-migration-dialogue", "2018-04-04")
    assert dialogue["status"] == "active"
    assert dialogue["launched"] == "2011-05"
    assert dialogue["meetings"]["held"] == 1
    assert dialogue["meetings"]["last"]["place"] == "Sofia"


def test_frontex_name_in_2019_and_today(seeded: Registry) -> None:
    renamed = event_id(seeded, "frontex", "renamed")

    # The text gives the new name only "as of today": in 2019 the rename may not have happened yet.
    in_2019 = view(seeded, "frontex", "2019-01-01")
    assert in_2019["name"] == OLD_FRONTEX
    assert in_2019["uncertain"] == [renamed]

    # By the day the dataset was compiled (and so today) it certainly has.
    today = view(seeded, "frontex", None)
    assert today["name"] == "European Border and Coast Guard Agency"
    assert today["acronym"] == "FRONTEX"
    assert today["uncertain"] == []


def test_border_guard_contacts_from_2006(seeded: Registry) -> None:
    channel = view(seeded, "fsb-border-guard-service-frontex", "2007-01-01")
    assert channel["status"] == "active"
    assert channel["contacts_established"] == "2006"
    assert channel["parties"] == ["fsb-border-guard-service", "frontex"]


def test_every_seeded_event_quotes_the_document(seeded: Registry) -> None:
    envelopes = seeded.reader.events(0, 1000)["items"]
    assert len(envelopes) == seeded.reader.head()["position"]
    establishments = {(record_id, event["type"]) for _, record_id, event in ESTABLISHMENTS}
    for envelope in envelopes:
        if (envelope["record"], envelope["type"]) in establishments:
            continue  # the text does not date them: see test_every_organisation_is_established_with_its_act
        sources = envelope["sources"]
        assert sources, f"{envelope['record']} {envelope['type']} has no source"
        for source in sources:
            assert source["title"] == DOCUMENT
            assert source["quote"] and source["quote"] in SOURCE_TEXT, source["quote"]
        evidence = EVIDENCE.get((envelope["record"], envelope["type"]))
        if evidence is not None:
            assert any(evidence in source["quote"] for source in sources), (envelope["record"], envelope["type"])
    assert {(e["record"], e["type"]) for e in envelopes} >= set(EVIDENCE)


def test_every_organisation_is_established_with_its_act(seeded: Registry) -> None:
    # The EU from the Maastricht Treaty's entry into force; the FSB Border Guard Service from 1 July 2003.
    eu = view(seeded, "eu", "1993-11-01")
    assert (eu["status"], eu["evidence"][0]["valid"]) == ("active", "1993-11-01")
    assert "Treaty on European Union" in eu["evidence"][0]["sources"][0]["title"]
    assert eu["evidence"][0]["sources"][0]["url"].startswith("https://eur-lex.europa.eu/")
    assert view(seeded, "eu", "1993-10-31")["status"] is None
    border_guard = view(seeded, "fsb-border-guard-service", "2003-07-01")
    assert border_guard["status"] == "active"
    assert any("11 March 2003" in source["title"] for source in border_guard["evidence"][0]["sources"])
    assert view(seeded, "fsb-border-guard-service", "2003-06-30")["status"] is None

    # Every organisation the seed names is in the list and the snapshot today.
    named = sorted(record_id for collection, record_id, _, _ in TIMELINE if collection == "organisations")
    listed = [item["id"] for item in seeded.reader.list("organisations", None, None)["items"]]
    assert listed == named == ["eu", "frontex", "fsb-border-guard-service"]
    snapshot = seeded.reader.snapshot(None, None)["records"]["organisations"]
    assert [item["id"] for item in snapshot] == named
