"""The seed timeline: Russia–EU cooperation in the migration sphere.

Every fact comes from `seeds/migration-issues.txt` ("Migration issues"), with the
sentence it rests on and the precision the text gives, but the establishment of the
EU and of the FSB Border Guard Service, which the text does not date: those cite the
acts that established them (`ESTABLISHMENTS`, written after the timeline). Where the text says
"as of today" or gives no date, the valid time is the set of days up to the day
the dataset was compiled, [..2026-11-29]: the fact is certain by then, and
uncertain before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from registry.service import Registry

DOCUMENT = "Migration issues (Russia–EU cooperation in the migration sphere)"
BY_COMPILATION = "[..2026-11-29]"
ACTOR = "seed"

Q_READMISSION = (
    "The signing in 2006 of the Agreement on Readmission (i.e. admitting back persons illegally staying in the "
    "territory of one country to the country where they arrived from) which entered into force on 1 June 2007, "
    "became a significant step in respect of combating illegal migration."
)
Q_SCOPE = (
    "As of 1 June 2010 the readmission procedure applies also to nationals of third countries and stateless persons."
)
Q_PROTOCOLS = (
    "In order to effectively implement the Agreement, Russia and most of EU Member States signed relevant "
    "bilateral Implementing Protocols."
)
Q_COMMITTEE = (
    "Within the Russia-EU Joint Committee on readmission the Parties adopt recommendations for practical "
    "implementation of the Agreement."
)
Q_17TH = "The 17th meeting of the Joint Committee took place on 4 October 2017 in Brussels."
Q_DIALOGUE = (
    "In May 2011, Russia and the EU launched a Dialogue on Migration. The Dialogue provides for an exchange of views "
    "on legal migration, asylum and other forms of international protection, as well as discussing approaches to "
    "combating illegal migration and trafficking in human beings."
)
Q_SOFIA = (
    "The most recent meeting in this format dedicated to issues of combating illegal migration took place on "
    "4-5 April 2018 in Sofia."
)
Q_CONTACTS = (
    "The Border Guard Service of the Federal Security Service of the Russian Federation and the European Agency for "
    "the Management of Operational Cooperation at the External Borders of the Member States of the European Union "
    "(FRONTEX, the European Border and Coast Guard Agency as of today) established contacts in 2006."
)


def source(quote: str) -> list[dict[str, Any]]:
    return [{"title": DOCUMENT, "quote": quote}]


# The text names the EU and the FSB Border Guard Service but says nothing of their
# beginnings; these come from the acts that established them.
TEU = {
    "title": "Treaty on European Union (Maastricht, 7 February 1992), OJ C 191, 29.7.1992",
    "url": "https://eur-lex.europa.eu/legal-content/EN/TXT/?uri=CELEX:11992M/TXT",
    "quote": "By this Treaty, the High Contracting Parties establish among themselves a European Union, "
             "hereinafter called 'the Union'.",
}
DECREE_308 = {
    "title": "Decree of the President of the Russian Federation of 11 March 2003 No. 308 \"On measures to improve "
             "state administration in the field of security of the Russian Federation\"",
}
BORDER_SERVICE = {
    "title": "Пограничная служба ФСБ России (Border Service of the FSB of Russia), Wikipedia",
    "url": "https://ru.wikipedia.org/wiki/"
           "%D0%9F%D0%BE%D0%B3%D1%80%D0%B0%D0%BD%D0%B8%D1%87%D0%BD%D0%B0%D1%8F_%D1%81%D0%BB%D1%83%D0%B6%D0%B1%D0%B0_%D0%A4%D0%A1%D0%91_%D0%A0%D0%BE%D1%81%D1%81%D0%B8%D0%B8",
}
ESTABLISHMENTS: list[tuple[str, str, dict[str, Any]]] = [
    ("organisations", "eu", {
        "type": "established", "valid": "1993-11-01", "sources": [TEU],
        "note": "The Treaty on European Union (Maastricht) established the Union; it entered into force on "
                "1 November 1993."}),
    ("organisations", "fsb-border-guard-service", {
        "type": "established", "valid": "2003-07-01", "sources": [DECREE_308, BORDER_SERVICE],
        "note": "The decree of 11 March 2003 moved the border guard into the FSB; the Federal Border Service "
                "existed until 30 June 2003 and the Border Service of the FSB from 1 July 2003."}),
]


# (collection, record id, registration, [events])
TIMELINE: list[tuple[str, str, dict[str, Any], list[dict[str, Any]]]] = [
    ("organisations", "eu", {"name": "European Union", "acronym": "EU", "sources": source(Q_DIALOGUE)}, []),
    ("organisations", "fsb-border-guard-service", {
        "name": "Border Guard Service of the Federal Security Service of the Russian Federation",
        "sources": source(Q_CONTACTS)}, []),
    ("organisations", "frontex", {
        "name": "European Agency for the Management of Operational Cooperation at the External Borders "
                "of the Member States of the European Union",
        "acronym": "FRONTEX", "sources": source(Q_CONTACTS)}, [
        {"type": "renamed", "valid": BY_COMPILATION, "name": "European Border and Coast Guard Agency",
         "acronym": "FRONTEX", "sources": source(Q_CONTACTS),
         "note": "The text gives the new name 'as of today' and no date for the change."},
    ]),
    ("agreements", "ru-eu-readmission-agreement", {
        "title": "Agreement on Readmission", "short_title": "Readmission Agreement",
        "agreement_type": "agreement", "parties": ["RU", "eu"], "sources": source(Q_READMISSION)}, [
        {"type": "signed", "valid": "2006", "sources": source(Q_READMISSION)},
        {"type": "entered_into_force", "valid": "2007-06-01", "sources": source(Q_READMISSION)},
        {"type": "scope_extended", "valid": "2010-06-01",
         "scope": "nationals of third countries and stateless persons", "sources": source(Q_SCOPE)},
    ]),
    ("agreements", "ru-eu-readmission-implementing-protocols", {
        "title": "Bilateral Implementing Protocols to the Agreement on Readmission",
        "agreement_type": "implementing_protocol", "parent": "ru-eu-readmission-agreement",
        "parties": ["RU"], "sources": source(Q_PROTOCOLS),
        "note": "Signed by Russia and most of the EU Member States; the text names neither the states nor dates."}, [
        {"type": "signed", "valid": BY_COMPILATION, "sources": source(Q_PROTOCOLS),
         "note": "Russia and most of EU Member States signed; no date is given."},
    ]),
    ("bodies", "ru-eu-readmission-joint-committee", {
        "title": "Russia-EU Joint Committee on readmission", "parties": ["RU", "eu"],
        "established_by": "ru-eu-readmission-agreement", "sources": source(Q_COMMITTEE)}, [
        {"type": "established", "valid": "[..2017-10-04]", "sources": source(Q_17TH),
         "note": "The text gives no date; the committee existed by its 17th meeting on 4 October 2017."},
    ]),
    ("meetings", "ru-eu-readmission-joint-committee-17", {
        "title": "17th meeting of the Russia-EU Joint Committee on readmission",
        "series": "ru-eu-readmission-joint-committee", "ordinal": 17, "sources": source(Q_17TH)}, [
        {"type": "held", "valid": "2017-10-04", "place": "Brussels", "sources": source(Q_17TH)},
    ]),
    ("dialogues", "ru-eu-migration-dialogue", {
        "title": "Russia-EU Dialogue on Migration", "parties": ["RU", "eu"],
        "themes": ["legal migration", "asylum and other forms of international protection",
                   "combating illegal migration", "trafficking in human beings"],
        "sources": source(Q_DIALOGUE)}, [
        {"type": "launched", "valid": "2011-05", "sources": source(Q_DIALOGUE)},
    ]),
    ("meetings", "ru-eu-migration-dialogue-sofia-2018", {
        "title": "Expert session of the Russia-EU Dialogue on Migration on combating illegal migration",
        "series": "ru-eu-migration-dialogue", "format": "expert session", "sources": source(Q_SOFIA)}, [
        {"type": "held", "valid": "2018-04-04/2018-04-05", "place": "Sofia",
         "topics": ["combating illegal migration"], "sources": source(Q_SOFIA)},
    ]),
    ("channels", "fsb-border-guard-service-frontex", {
        "title": "Contacts between the FSB Border Guard Service and FRONTEX",
        "parties": ["fsb-border-guard-service", "frontex"], "sources": source(Q_CONTACTS)}, [
        {"type": "contacts_established", "valid": "2006", "sources": source(Q_CONTACTS)},
    ]),
]


WRITES = sum(1 + len(events) for *_, events in TIMELINE) + len(ESTABLISHMENTS)  # one event each


def seed(registry: Registry, progress: Callable[[int], object] | None = None) -> int:
    """Load the seed timeline; idempotent: each write has an idempotency key, so a rerun replays it."""
    count = 0
    for collection, record_id, registration, events in TIMELINE:
        registry.register(collection, {"id": record_id, **registration}, ACTOR,
                          idempotency_key=f"seed:{record_id}:registered")
        for number, event in enumerate(events, start=2):
            registry.append(collection, record_id, event, ACTOR, idempotency_key=f"seed:{record_id}:{number}")
        count += 1 + len(events)
        if progress:
            progress(1 + len(events))
    for collection, record_id, event in ESTABLISHMENTS:
        registry.append(collection, record_id, event, ACTOR, idempotency_key=f"seed:{record_id}:established")
        count += 1
        if progress:
            progress(1)
    return count
