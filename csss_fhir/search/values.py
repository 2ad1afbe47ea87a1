"""FHIR search value rules: how one parameter value becomes an SQL clause, by FHIR type.

- a comma inside one value is OR (`status=final,preliminary`); a repeated parameter is AND;
- token `[system]|[code]`, `|code` (no system) and `code` (any system);
- date `eq ne gt lt ge le sa eb` on `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a dateTime, each an
  implicit range;
- string: case- and accent-insensitive (`fold`) "starts with" by default, at the start of
  the element or of any word in it; `:exact` (case- and accent-sensitive equality) and
  `:contains`;
- reference: `id`, `Type/id` or an absolute URL ending so; `:Type` names the target type;
- `:missing` (every type): `true` or `false`, nothing else.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from csss_fhir.errors import InvalidInputError

DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")


def split_or(value: str) -> list[str]:
    """Split on commas that are not escaped with a backslash (FHIR's OR)."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",") for p in parts if p != ""]


def missing_flag(name: str, value: str) -> bool:
    """The value of `name:missing`: True for `true` (the element has no value), False for
    `false`.

    Raises:
        InvalidInputError: any other value (`yes`, `1`, `true,false`).
    """
    if value not in ("true", "false"):
        raise InvalidInputError(
            f"{name}:missing={value!r} is not true or false; send {name}:missing=true for "
            f"the resources without the element, or {name}:missing=false for those with it",
            field=f"{name}:missing")
    return value == "true"


def token_parts(value: str) -> tuple[str | None, str]:
    """(system, code); system None: any system, "" : no system (`|code`)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


def reference_parts(value: str) -> list[str]:
    """The path segments of a reference value (`Type/id`, `id` or a URL), last one the id."""
    return value.rstrip("/").split("/")


def reference_id(value: str, expected_type: str, modifier: str | None = None) -> str:
    """The id of a reference to `expected_type`.

    Raises:
        InvalidInputError: the value or the `:Type` modifier names another type.
    """
    if modifier and modifier != expected_type:
        raise InvalidInputError(f"expected a reference to {expected_type}, got :{modifier}")
    parts = reference_parts(value)
    if len(parts) >= 2 and parts[-2] != expected_type:
        raise InvalidInputError(f"expected a reference to {expected_type}, got {value!r}")
    return parts[-1]


def like_escape(value: str) -> str:
    """Escape LIKE wildcards; pair with `escape="\\"`."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A date without a time is a whole day, month or year: (pattern, start, end) of that range.
_PARTIAL_DATES: tuple[tuple[str, Any, Any], ...] = (
    (r"\d{4}-\d{2}-\d{2}",
     lambda t: datetime.combine(date.fromisoformat(t), datetime.min.time(), UTC),
     lambda start: start + timedelta(days=1)),
    (r"\d{4}-\d{2}",
     lambda t: datetime(int(t[:4]), int(t[5:7]), 1, tzinfo=UTC),
     lambda s: datetime(s.year + s.month // 12, s.month % 12 + 1, 1, tzinfo=UTC)),
    (r"\d{4}",
     lambda t: datetime(int(t), 1, 1, tzinfo=UTC),
     lambda s: datetime(s.year + 1, 1, 1, tzinfo=UTC)),
)


# The ends of the calendar Python can hold: a range that would run past one stops there
# (`9999-12-31` ends at the last instant of 9999; `0001-01-01T00:00:00+14:00` starts at 0001).
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_LATEST = datetime.max.replace(tzinfo=UTC)


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return _EARLIEST if moment.year == datetime.min.year else _LATEST


def _date_time_range(text: str) -> tuple[datetime, datetime]:
    """[start, end) of a date or dateTime at its own precision, in UTC; ValueError if
    neither."""
    for pattern, start_of, end_of in _PARTIAL_DATES:
        if re.fullmatch(pattern, text):
            start = start_of(text)
            try:
                return start, end_of(start)
            except (OverflowError, ValueError):  # the range ends after 9999
                return start, _LATEST
    if "T" not in text:
        raise ValueError(text)
    start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    precision = timedelta(seconds=1) if start.microsecond == 0 else timedelta(microseconds=1)
    try:
        end = start + precision
    except OverflowError:
        end = _LATEST
    return _in_utc(start), _in_utc(end)


def date_range(value: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) of a FHIR date search value.

    Raises:
        InvalidInputError: the value is not a FHIR date or dateTime.
    """
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        start, end = _date_time_range(text)
    except ValueError as err:
        raise InvalidInputError(
            f"{value!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a "
            f"time zone), optionally prefixed {'/'.join(DATE_PREFIXES)}") from err
    return prefix, start, end


def date_clause(column: Any, value: str, *, date_column: bool = False) -> ColumnElement[bool]:
    """FHIR date search: the value is a range [start, end); the prefix compares ranges."""
    prefix, start, end = date_range(value)
    if date_column:  # a Date column holds whole days: compare inclusively
        low, high = start.date(), (end - timedelta(microseconds=1)).date()
        return {
            "eq": and_(column >= low, column <= high),
            "ne": or_(column < low, column > high),
            "gt": column > high, "sa": column > high,
            "ge": column >= low,
            "lt": column < low, "eb": column < low,
            "le": column <= high,
        }[prefix]
    return {
        "eq": and_(column >= start, column < end),
        "ne": or_(column < start, column >= end),
        "gt": column >= end, "sa": column >= end,
        "ge": column >= start,
        "lt": column < start, "eb": column < start,
        "le": column < end,
    }[prefix]


def fold(text: str) -> str:
    """Text as FHIR string search compares it: accents dropped (NFKD, no combining marks),
    case folded ("Núñez" ~ "nunez", "Straße" ~ "strasse")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def string_matches(texts: Iterable[str | None], value: str, modifier: str | None) -> bool:
    """FHIR string search over the texts of one resource's element(s) (any may match)."""
    present = [text for text in texts if text]
    if modifier == "exact":
        return value in present
    needle = fold(value)
    if modifier == "contains":
        return any(needle in fold(text) for text in present)
    # Default: starts with, at the start of the element or of any word in it.
    return any(f" {needle}" in f" {' '.join(fold(text).split())}" for text in present)
