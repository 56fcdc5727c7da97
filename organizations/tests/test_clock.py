"""One format for every time a clinic user sees: the clinic's zone, labelled."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from organizations.clock import clinic_clock, clinic_time, zone_label

MOMENT = dt.datetime(2026, 12, 2, 19, 5, 7, tzinfo=dt.UTC)


def test_a_moment_is_shown_in_the_clinics_zone_with_its_label():
    assert clinic_time(MOMENT, zoneinfo.ZoneInfo("America/New_York")) == "Wed 02 Dec 2026, 14:05 EST"
    assert clinic_time(MOMENT, zoneinfo.ZoneInfo("America/Los_Angeles")) == "Wed 02 Dec 2026, 11:05 PST"


def test_transcript_lines_show_the_time_of_day_with_the_same_label():
    assert clinic_clock(MOMENT, zoneinfo.ZoneInfo("America/New_York")) == "14:05:07 EST"


def test_no_clinic_means_utc_and_says_so():
    assert clinic_time(MOMENT, None) == "Wed 02 Dec 2026, 19:05 UTC"
    assert zone_label(None, MOMENT) == "UTC (UTC)"
    assert zone_label(zoneinfo.ZoneInfo("America/New_York"), MOMENT) == "America/New_York (EST)"


def test_a_missing_moment_is_a_dash():
    assert clinic_time(None, None) == "—"
