"""The pages' plain words for valid times and uncertain events, on the seed's own values."""

from __future__ import annotations

import pytest

from api.pages import words


@pytest.mark.parametrize(("valid", "said"), [
    ("2006", "in 2006"),
    ("2011-05", "in May 2011"),
    ("2007-06-01", "on 1 June 2007"),
    ("[..2017-10-04]", "on or before 4 October 2017"),
    ("2018-04-04/2018-04-05", "from 4 April 2018 to 5 April 2018"),
    ("2020-07/..", "from some day in July 2020 to an open end"),
])
def test_valid_times_in_words(valid: str, said: str) -> None:
    assert words.when(valid) == said


def test_an_uncertain_signing_is_explained() -> None:
    said = words.uncertain_sentence("signed", "2006", "2006-06-01")
    assert said == "Signed some day in 2006; not certain by 1 June 2006."
    assert words.uncertain_sentence("established", "[..2017-10-04]", "2017-01-01") == (
        "Established some day on or before 4 October 2017; not certain by 1 January 2017.")


def test_evidence_is_derived_from_certain_current_events_when_the_view_has_none() -> None:
    history = [
        {"id": "a", "type": "registered", "state": "current", "certainty": None, "valid": None, "sources": []},
        {"id": "b", "type": "signed", "state": "current", "certainty": "certain", "valid": "2006", "sources": [1]},
        {"id": "c", "type": "entered_into_force", "state": "retracted", "certainty": "certain", "valid": "2007",
         "sources": []},
        {"id": "d", "type": "scope_extended", "state": "corrected", "certainty": "certain", "valid": "2010",
         "effective": {"valid": "2010-06-01"}, "sources": [2]},
        {"id": "e", "type": "terminated", "state": "current", "certainty": "uncertain", "valid": "2030",
         "sources": []},
    ]
    assert words.evidence({}, history) == [
        {"event": "b", "type": "signed", "valid": "2006", "sources": [1]},
        {"event": "d", "type": "scope_extended", "valid": "2010-06-01", "sources": [2]},
    ]
    assert words.evidence({"evidence": [{"event": "x"}]}, history) == [{"event": "x"}]
