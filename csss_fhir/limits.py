"""Length limits of free text, checked where the text enters (API, UI, CLI alike).

A 200 KB note made `$approve` take 14 s and a 600 KB one killed the worker (the PDF lays
out every character), and a name longer than its column is a database error on PostgreSQL.
Every limit here is at most its column's size; notes are long enough for a clinical note
and short enough that a report's PDF renders in well under a second.
"""

from __future__ import annotations

from csss_fhir.errors import InvalidInputError

NOTE = 4000  # clinical notes, review notes, reasons, amendment notes, prescription notes
NAME = 200  # a person's name, a medication (String(200) columns)
SHORT = 100  # dose, route, frequency, duration (String(100) columns)
DOSAGE_TEXT = 500


def check_length(field: str, value: str | None, limit: int) -> str | None:
    """`value` when it is at most `limit` characters.

    Raises:
        InvalidInputError: longer, naming the field, its length and the limit.
    """
    if value is not None and len(value) > limit:
        raise InvalidInputError(f"{field} is {len(value):,} characters long; the limit is "
                                f"{limit:,}: shorten it")
    return value
