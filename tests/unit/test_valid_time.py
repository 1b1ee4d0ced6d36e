"""Valid time: EDTF text read as inclusive day bounds, and the strict day/instant parameters."""

from __future__ import annotations

import datetime as dt

import pytest

from events import InvalidValidTime, ValidTime, parse_day, parse_instant


def bounds(text: str) -> tuple[dt.date, dt.date | None, dt.date]:
    value = ValidTime.parse(text)
    return value.lower, value.upper, value.certain_from


# Points: reduced precision is uncertainty, so a point is certain only from its last possible day.


def test_a_year_spans_the_whole_year() -> None:
    # The readmission agreement was signed "in 2006": one unknown day of that year.
    signed = ValidTime.parse("2006")
    assert (signed.lower, signed.upper, signed.certain_from) == (dt.date(2006, 1, 1), dt.date(2006, 12, 31),
                                                                 dt.date(2006, 12, 31))
    assert signed.is_interval is False
    assert signed.text == "2006"


def test_a_month_spans_the_whole_month() -> None:
    # The Dialogue on Migration was launched "in May 2011".
    assert bounds("2011-05") == (dt.date(2011, 5, 1), dt.date(2011, 5, 31), dt.date(2011, 5, 31))


def test_a_day_is_its_own_bounds() -> None:
    # The agreement entered into force on 1 June 2007.
    assert bounds("2007-06-01") == (dt.date(2007, 6, 1), dt.date(2007, 6, 1), dt.date(2007, 6, 1))


def test_a_leap_february_ends_on_the_29th() -> None:
    assert bounds("2008-02")[1] == dt.date(2008, 2, 29)


def test_surrounding_blanks_are_dropped_from_the_text() -> None:
    assert ValidTime.parse("  2007-06-01 ").text == "2007-06-01"


# Intervals: a duration, certain once its start has certainly come.


def test_a_two_day_session_is_certain_from_its_first_day() -> None:
    # The Sofia session of the Dialogue ran over 4 and 5 April 2018.
    sofia = ValidTime.parse("2018-04-04/2018-04-05")
    assert sofia.is_interval is True
    assert (sofia.lower, sofia.upper) == (dt.date(2018, 4, 4), dt.date(2018, 4, 5))
    assert sofia.certain_from == dt.date(2018, 4, 4)
    assert sofia.bounds() == {"valid_lower": "2018-04-04", "valid_upper": "2018-04-05"}


def test_an_interval_with_a_month_start_is_certain_at_that_months_end() -> None:
    value = ValidTime.parse("2020-07/2020-09")
    assert (value.lower, value.upper, value.certain_from) == (dt.date(2020, 7, 1), dt.date(2020, 9, 30),
                                                              dt.date(2020, 7, 31))


def test_an_open_interval_has_no_upper_bound() -> None:
    # Something ongoing since July 2020.
    ongoing = ValidTime.parse("2020-07/..")
    assert ongoing.is_interval is True
    assert (ongoing.lower, ongoing.upper, ongoing.certain_from) == (dt.date(2020, 7, 1), None, dt.date(2020, 7, 31))
    assert ongoing.bounds() == {"valid_lower": "2020-07-01", "valid_upper": None}
    assert ongoing.contains(dt.date(2030, 1, 1))
    assert not ongoing.contains(dt.date(2020, 6, 30))


def test_contains_is_inclusive_at_both_ends() -> None:
    sofia = ValidTime.parse("2018-04-04/2018-04-05")
    assert sofia.contains(dt.date(2018, 4, 4)) and sofia.contains(dt.date(2018, 4, 5))
    assert not sofia.contains(dt.date(2018, 4, 3)) and not sofia.contains(dt.date(2018, 4, 6))


# Level 1 qualifiers, seasons, sub-year groups and the "by then" set.


@pytest.mark.parametrize("text", ["2006?", "2006~", "2006%"])
def test_qualifiers_keep_the_bounds_of_the_unqualified_value(text: str) -> None:
    assert bounds(text) == bounds("2006")
    assert ValidTime.parse(text).text == text


def test_a_qualified_month_keeps_month_bounds() -> None:
    assert bounds("2011-05?") == bounds("2011-05")


@pytest.mark.parametrize(
    ("text", "lower", "upper"),
    [
        ("2020-21", dt.date(2020, 3, 1), dt.date(2020, 5, 31)),  # spring
        ("2020-22", dt.date(2020, 6, 1), dt.date(2020, 8, 31)),  # summer
        ("2020-23", dt.date(2020, 9, 1), dt.date(2020, 11, 30)),  # autumn
        ("2020-40", dt.date(2020, 1, 1), dt.date(2020, 6, 30)),  # first half
        ("2020-41", dt.date(2020, 7, 1), dt.date(2020, 12, 31)),  # second half
    ],
)
def test_seasons_and_sub_year_groups_are_day_ranges(text: str, lower: dt.date, upper: dt.date) -> None:
    assert bounds(text) == (lower, upper, upper)


def test_a_by_then_set_is_uncertain_until_its_last_day() -> None:
    # The seed's "as of today" facts: one day on or before 29 November 2026.
    by_compilation = ValidTime.parse("[..2026-11-29]")
    assert by_compilation.lower == dt.date.min
    assert by_compilation.upper == by_compilation.certain_from == dt.date(2026, 11, 29)
    assert by_compilation.certainty(dt.date(2006, 1, 1)) == "uncertain"
    assert by_compilation.certainty(dt.date(2026, 11, 29)) == "certain"


# Rejections.


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("in 2006", "not valid EDTF"),
        ("2006-13", "not valid EDTF"),
        ("2006-02-30", "not a date in the calendar: February 2006 has 28 days"),
        ("2018-04-05/2018-04-04", "ends before it starts"),
        ("2007/2006", "ends before it starts"),
        ("../2020", "start must be known"),
        ("1984-~06", "only EDTF levels 0 and 1"),
        ("{2006,2007}", "only EDTF levels 0 and 1"),
    ],
)
def test_rejected_values_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidValidTime, match=message):
        ValidTime.parse(text)


@pytest.mark.parametrize("text", [
    "2006-02-29", "2006-02-29?", "2006-02-29~", "2006-02-29%", "2006-02-29T10:00:00Z", "2006-02-29/2006-03-01",
    "2006-01-01/2006-02-29", "2006-02-29/..", "[2006-02-29,2006-03-01]", "[..2006-02-29]",
])
def test_a_29_february_outside_a_leap_year_is_not_a_date_in_the_calendar(text: str) -> None:
    """Not "has no finite day bounds": the day does not exist, and the message says so."""
    with pytest.raises(InvalidValidTime, match="2006-02-29'? is not a date in the calendar: February 2006 has 28 days"):
        ValidTime.parse(text)
    assert ValidTime.parse(text.replace("2006", "2008")).lower <= dt.date(2008, 2, 29)  # a leap year has it


@pytest.mark.parametrize("text", ["2006-04-31", "2006-06-31/2006-07-02"])
def test_a_day_past_its_months_end_is_not_a_date_in_the_calendar(text: str) -> None:
    with pytest.raises(InvalidValidTime, match="not a date in the calendar: (April|June) 2006 has 30 days"):
        ValidTime.parse(text)


@pytest.mark.parametrize("value", ["", "   ", None, 2006, ["2006"]])
def test_a_valid_time_must_be_non_empty_text(value: object) -> None:
    with pytest.raises(InvalidValidTime, match="must be an EDTF string"):
        ValidTime.parse(value)


def test_invalid_valid_time_is_a_value_error() -> None:
    # Callers that catch ValueError (the correction check) catch it too.
    assert issubclass(InvalidValidTime, ValueError)


# Certainty as of a day.


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (dt.date(2005, 12, 31), "not_yet"),
        (dt.date(2006, 1, 1), "uncertain"),
        (dt.date(2006, 12, 30), "uncertain"),
        (dt.date(2006, 12, 31), "certain"),
        (dt.date(2017, 10, 4), "certain"),
    ],
)
def test_certainty_of_the_2006_signature(day: dt.date, expected: str) -> None:
    assert ValidTime.parse("2006").certainty(day) == expected


def test_a_day_precise_fact_is_never_uncertain() -> None:
    in_force = ValidTime.parse("2007-06-01")
    assert in_force.certainty(dt.date(2007, 5, 31)) == "not_yet"
    assert in_force.certainty(dt.date(2007, 6, 1)) == "certain"


def test_an_interval_is_certain_while_it_is_still_running() -> None:
    sofia = ValidTime.parse("2018-04-04/2018-04-05")
    assert sofia.certainty(dt.date(2018, 4, 3)) == "not_yet"
    assert sofia.certainty(dt.date(2018, 4, 4)) == "certain"


# The as_of and known_at parameters.


def test_parse_day_reads_a_calendar_day() -> None:
    assert parse_day("2017-10-04") == dt.date(2017, 10, 4)


@pytest.mark.parametrize(
    "value", ["2017-10-4", "20171004", "2017-10", "2017-10-04T00:00:00Z", "2017-13-01", " 2017-10-04", None, 20171004]
)
def test_parse_day_rejects_anything_but_yyyy_mm_dd(value: object) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        parse_day(value)


def test_parse_day_rejects_an_iso_week_date() -> None:
    # "2017-W40-3" is ten characters and names 4 October 2017, but it is not YYYY-MM-DD.
    with pytest.raises(ValueError):
        parse_day("2017-W40-3")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-03-01T00:00:00Z", dt.datetime(2019, 3, 1, tzinfo=dt.UTC)),
        ("2019-03-01t00:00:00z", dt.datetime(2019, 3, 1, tzinfo=dt.UTC)),
        ("2019-03-01T03:00:00+03:00", dt.datetime(2019, 3, 1, tzinfo=dt.UTC)),
        ("2019-02-28T19:00:00-05:00", dt.datetime(2019, 3, 1, tzinfo=dt.UTC)),
        ("2019-03-01T00:00:00.250Z", dt.datetime(2019, 3, 1, 0, 0, 0, 250000, tzinfo=dt.UTC)),
    ],
)
def test_parse_instant_returns_utc(text: str, expected: dt.datetime) -> None:
    instant = parse_instant(text)
    assert instant == expected
    assert instant.utcoffset() == dt.timedelta(0)


def test_parse_instant_needs_a_zone() -> None:
    with pytest.raises(ValueError, match="needs a time zone"):
        parse_instant("2019-03-01T00:00:00")


@pytest.mark.parametrize("value", ["2019-03-01", "2019-03-01 00:00:00Z", "2019-03-01T25:00:00Z", "Tuesday", None])
def test_parse_instant_rejects_non_instants(value: object) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_instant(value)


@pytest.mark.parametrize("value", ["20190301T000000Z", "2019-W09-5T00:00:00Z", "2019-03-01T00:00Z"])
def test_parse_instant_rejects_iso_forms_outside_rfc_3339(value: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(value)


# The fast path for plain dates must agree with the EDTF grammar.


@pytest.mark.parametrize("text", ["2006", "2011-05", "2007-06-01", "2018-04-04/2018-04-05", "2006/2007-06"])
def test_plain_dates_have_the_bounds_the_edtf_grammar_gives(text: str) -> None:
    assert ValidTime.parse(text) == ValidTime._parse_edtf(text)


@pytest.mark.parametrize("text", ["0000", "0000-05", "0000-02-29"])
def test_year_zero_is_an_invalid_valid_time(text: str) -> None:
    with pytest.raises(InvalidValidTime, match="year 0 is outside the registry's calendar"):
        ValidTime.parse(text)


def test_non_ascii_digits_are_not_edtf() -> None:
    with pytest.raises(InvalidValidTime):
        ValidTime.parse("２００６")


def test_valid_times_are_bounded_and_refused_before_parsing() -> None:
    import time

    from events.valid_time import MAX_LENGTH

    for text in ("[" + ",".join(["2019-01-01"] * 3000) + "]", "[" + ",".join(["2019"] * 33) + "]",
                 "2019-01-01/" + "2019-01-01" * 10):
        started = time.perf_counter()
        with pytest.raises(InvalidValidTime):
            ValidTime.parse(text)
        assert time.perf_counter() - started < 0.05
    assert len("[" + ",".join(["2019"] * 19) + "]") <= MAX_LENGTH
    assert ValidTime.parse("[" + ",".join(["2019"] * 19) + "]").lower.isoformat() == "2019-01-01"
    # a value the log already holds is read whatever its length
    assert ValidTime.stored("[" + ",".join(["2019"] * 40) + "]").upper is not None
