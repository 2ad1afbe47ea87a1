"""Times as the hospital reads them, and the report's file name."""

from __future__ import annotations

from datetime import UTC, datetime

from csss_fhir.reports.times import format_time, report_filename

LATE = datetime(2025, 3, 14, 23, 30, tzinfo=UTC)


def test_a_time_is_shown_in_the_hospitals_zone_with_its_name():
    assert format_time(LATE, "UTC") == "14 Mar 2025, 23:30 UTC"
    assert format_time(LATE, "Europe/Berlin") == "15 Mar 2025, 00:30 CET"
    assert format_time(datetime(2025, 7, 1, 12, tzinfo=UTC), "Europe/Berlin") == \
        "01 Jul 2025, 14:00 CEST"


def test_the_file_name_is_the_hospitals_day():
    assert report_filename(LATE, "UTC") == "report-2025-03-14.pdf"
    assert report_filename(LATE, "Asia/Tokyo") == "report-2025-03-15.pdf"
    assert report_filename(LATE, "America/New_York") == "report-2025-03-14.pdf"
