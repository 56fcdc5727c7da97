"""Open/closed and next opening in the clinic's own time zone, across DST, overnight intervals and closures."""

import datetime as dt
import zoneinfo

import pytest
from django.core.exceptions import ValidationError

from conftest import make_org
from organizations.models import BusinessHours, Closure, validate_hours_do_not_overlap

NY = zoneinfo.ZoneInfo("America/New_York")
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def at(year, month, day, hour, minute=0, tz=NY):
    return dt.datetime(year, month, day, hour, minute, tzinfo=tz)


def hours(org, weekday, opens, closes):
    return BusinessHours.objects.create(
        organization=org, weekday=weekday, opens=dt.time.fromisoformat(opens), closes=dt.time.fromisoformat(closes)
    )


@pytest.fixture
def clinic(db):
    org = make_org("hours-clinic")
    for day in (MON, TUE, WED, THU, FRI):
        hours(org, day, "09:00", "17:00")
    return org


def test_open_during_hours_and_closed_outside(clinic):
    assert clinic.is_open(at(2026, 11, 23, 9, 0))  # Monday 09:00 exactly
    assert clinic.is_open(at(2026, 11, 23, 16, 59))
    assert not clinic.is_open(at(2026, 11, 23, 17, 0))  # closing time is exclusive
    assert not clinic.is_open(at(2026, 11, 23, 8, 59))
    assert not clinic.is_open(at(2026, 11, 28, 12, 0))  # Saturday


def test_hours_are_read_in_the_clinics_time_zone_not_the_callers(clinic):
    # 14:30 UTC on a Monday in November is 09:30 in New York.
    assert clinic.is_open(dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC))
    assert not clinic.is_open(dt.datetime(2026, 11, 23, 13, 30, tzinfo=dt.UTC))


def test_next_opening_on_friday_evening_is_monday_morning(clinic):
    friday_evening = at(2026, 11, 27, 18, 0)
    assert clinic.next_opening(friday_evening) == at(2026, 11, 30, 9, 0)


def test_next_opening_is_none_while_open(clinic):
    assert clinic.next_opening(at(2026, 11, 23, 10, 0)) is None


def test_nine_oclock_stays_nine_oclock_across_spring_forward(clinic):
    # DST starts Sunday 2026-03-08 in New York; Monday 09:00 EDT is 13:00 UTC (it was 14:00 UTC the week before).
    assert clinic.next_opening(at(2026, 3, 7, 12, 0)) == at(2026, 3, 9, 9, 0)
    assert clinic.is_open(dt.datetime(2026, 3, 9, 13, 0, tzinfo=dt.UTC))
    assert not clinic.is_open(dt.datetime(2026, 3, 2, 13, 0, tzinfo=dt.UTC))


def test_nine_oclock_stays_nine_oclock_across_fall_back(clinic):
    # DST ends Sunday 2026-11-01; Monday 09:00 EST is 14:00 UTC.
    assert clinic.is_open(dt.datetime(2026, 11, 2, 14, 0, tzinfo=dt.UTC))
    assert not clinic.is_open(dt.datetime(2026, 11, 2, 13, 30, tzinfo=dt.UTC))


def test_overnight_interval_spans_midnight(db):
    org = make_org("urgent-care")
    hours(org, FRI, "20:00", "02:00")  # Friday night into Saturday
    assert org.is_open(at(2026, 11, 27, 23, 0))
    assert org.is_open(at(2026, 11, 28, 1, 59))  # Saturday early morning, from Friday's interval
    assert not org.is_open(at(2026, 11, 28, 2, 0))
    assert org.next_opening(at(2026, 11, 28, 3, 0)) == at(2026, 12, 4, 20, 0)


def test_overnight_interval_across_fall_back_lasts_an_extra_hour(db):
    org = make_org("night-clinic")
    hours(org, SAT, "22:00", "06:00")  # Saturday 2026-10-31 22:00 EDT -> Sunday 06:00 EST (9 hours)
    assert org.is_open(dt.datetime(2026, 11, 1, 10, 30, tzinfo=dt.UTC))  # 05:30 EST
    assert not org.is_open(dt.datetime(2026, 11, 1, 11, 0, tzinfo=dt.UTC))  # 06:00 EST


def test_sunday_overnight_wraps_into_monday(db):
    org = make_org("weekend-clinic")
    hours(org, SUN, "18:00", "01:00")
    assert org.is_open(at(2026, 11, 30, 0, 30))  # Monday 00:30 from Sunday's interval


def test_equal_open_and_close_means_around_the_clock(db):
    org = make_org("always-open")
    hours(org, WED, "00:00", "00:00")
    assert org.is_open(at(2026, 11, 25, 0, 0))
    assert org.is_open(at(2026, 11, 25, 23, 59))
    assert not org.is_open(at(2026, 11, 26, 0, 0))


def test_closure_closes_the_whole_day_and_moves_next_opening(clinic):
    Closure.objects.create(organization=clinic, date=dt.date(2026, 11, 26), label="Thanksgiving")
    assert not clinic.is_open(at(2026, 11, 26, 10, 0))
    assert clinic.next_opening(at(2026, 11, 25, 18, 0)) == at(2026, 11, 27, 9, 0)


def test_no_hours_means_never_open_and_no_next_opening(db):
    org = make_org("no-hours")
    assert not org.is_open(at(2026, 11, 23, 10, 0))
    assert org.next_opening(at(2026, 11, 23, 10, 0)) is None


def test_split_day_reopens_after_lunch(db):
    org = make_org("split")
    hours(org, MON, "08:00", "12:00")
    hours(org, MON, "13:00", "17:00")
    assert not org.is_open(at(2026, 11, 23, 12, 30))
    assert org.next_opening(at(2026, 11, 23, 12, 30)) == at(2026, 11, 23, 13, 0)


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ((MON, "09:00", "12:00"), (MON, "11:00", "14:00"), True),
        ((MON, "09:00", "12:00"), (MON, "12:00", "14:00"), False),
        ((MON, "22:00", "02:00"), (TUE, "01:00", "05:00"), True),  # overnight spills into Tuesday
        ((SUN, "22:00", "03:00"), (MON, "02:00", "08:00"), True),  # Sunday night wraps to Monday
        ((SUN, "22:00", "03:00"), (MON, "03:00", "08:00"), False),
    ],
)
def test_overlapping_intervals_are_rejected(first, second, overlap):
    def interval(spec):
        weekday, opens, closes = spec
        return BusinessHours(weekday=weekday, opens=dt.time.fromisoformat(opens), closes=dt.time.fromisoformat(closes))

    intervals = [interval(first), interval(second)]
    if overlap:
        with pytest.raises(ValidationError, match="overlap"):
            validate_hours_do_not_overlap(intervals)
    else:
        validate_hours_do_not_overlap(intervals)
