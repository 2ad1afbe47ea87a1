"""Times as the hospital reads them: stored in UTC, shown in `HOSPITAL_TIMEZONE`.

The database keeps UTC (models/base.py); only what a person reads, the UI and the PDF,
is converted, with the zone's abbreviation so that "14:30 CET" cannot be misread.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo


def local(value: datetime, zone: str) -> datetime:
    """`value` (aware, any zone) in the IANA zone `zone`."""
    return value.astimezone(ZoneInfo(zone))


def format_time(value: datetime, zone: str) -> str:
    """"14 Mar 2025, 11:42 CET": day, month name (never ambiguous), time and zone."""
    moment = local(value, zone)
    return f"{moment:%d %b %Y, %H:%M} {moment.tzname()}"


def local_date(value: datetime, zone: str) -> date:
    """The calendar day of `value` in the hospital (a report released at 23:30 UTC may
    be released "tomorrow" there)."""
    return local(value, zone).date()


def report_filename(released: datetime, zone: str) -> str:
    """The name a report PDF is saved under: `report-YYYY-MM-DD.pdf`, the hospital's day."""
    return f"report-{local_date(released, zone).isoformat()}.pdf"
