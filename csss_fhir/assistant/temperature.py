"""Temperatures in a message, and whether one is a red flag for the person it is about.

Patients write "104F", "39.8C", "39,6", "40 degrees" or just "a temp of 39.9". A number
is read as a temperature when it has a unit (°, degrees, C, F) or the message talks about
fever; a bare number is Celsius between 35 and 43.5 and Fahrenheit between 95 and 110.
Numbers that are ages or doses ("my 40 year old husband", "500 mg") are not temperatures.

The thresholds follow NICE NG143 (fever in under 5s, traffic-light table) and NHS advice,
erring high: 38 °C or more in a baby under 3 months (or a baby of unknown age, who may be
that young), 39 °C or more in any other child, 40 °C or more in anybody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BABY_FEVER_C = 38.0  # under 3 months: NICE NG143 red
CHILD_FEVER_C = 39.0  # a child's high fever
ANYONE_FEVER_C = 40.0  # hyperpyrexia

FEVER_WORDS = frozenset({"fever", "fevers", "feverish", "temperature", "temp", "temps",
                         "febrile", "pyrexia", "hot", "burning", "thermometer", "degrees"})
BABY_WORDS = frozenset({"baby", "babies", "babys", "infant", "infants", "newborn",
                        "newborns", "neonate", "bub", "bubba"})
CHILD_WORDS = frozenset({
    *BABY_WORDS, "toddler", "toddlers", "child", "childs", "children", "kid", "kids",
    "kiddo", "son", "sons", "daughter", "daughters", "boy", "boys", "girl", "girls",
    "grandchild", "grandson", "granddaughter", "nephew", "niece", "lo", "teen",
    "teenager", "yo"})

_NUMBER = re.compile(
    r"(?<![\d.,])(\d{2,3})(?:[.,](\d{1,2}))?(?!\d)\s*"
    r"(\u00b0|\u00ba|degrees?\b|degs?\b|deg\b)?\s*"
    r"(celsius|centigrade|fahrenheit|c|f)?(?![a-z])\s*([a-z]*)")
# A number followed by one of these is an age, a dose, a count or a time, not a reading.
_NOT_A_READING = frozenset({
    "year", "years", "yr", "yrs", "yo", "yos", "y", "month", "months", "mth", "mths", "mo",
    "mos", "m", "week", "weeks", "wk", "wks", "w", "day", "days", "d", "hour", "hours", "hr",
    "hrs", "h", "min", "mins", "minutes", "mg", "mcg", "ml", "g", "kg", "lb", "lbs", "kgs",
    "times", "x", "am", "pm", "percent", "tablets", "pills", "bpm", "breaths", "st",
    "nd", "rd", "th"})
_AGE = re.compile(
    r"\b(\d{1,2}) ?-?(?:(days?|weeks?|wks?|months?|mths?|mos?|years?|yrs?|y) ?-?olds?"
    r"|(yos?|yrs?|y/o))\b")
_MONTHS_PER = {"d": 1 / 30, "w": 0.25, "m": 1.0, "y": 12.0}


@dataclass(frozen=True)
class Reading:
    """A temperature in degrees Celsius, and the clause it was read in."""

    celsius: float
    clause: int


def readings(clauses: list[str], words: set[str]) -> list[Reading]:
    """The plausible temperatures in each clause's plain text (see the module docstring).

    `words` are all the message's words, to tell whether it talks about fever at all.
    """
    fever_talk = bool(FEVER_WORDS & words)
    found = []
    for index, clause in enumerate(clauses):
        for match in _NUMBER.finditer(clause):
            whole, decimals, degree, unit, after = match.groups()
            if after in _NOT_A_READING:
                continue
            value = float(f"{whole}.{decimals or 0}")
            celsius = _celsius(value, unit, has_unit=bool(degree or unit) or fever_talk)
            if celsius is not None:
                found.append(Reading(celsius, index))
    return found


def _celsius(value: float, unit: str | None, *, has_unit: bool) -> float | None:
    if not has_unit:
        return None
    if unit and unit.startswith("f"):
        return (value - 32) * 5 / 9 if 95 <= value <= 110 else None
    if 35 <= value <= 43.5:
        return value
    if not unit and 95 <= value <= 110:
        return (value - 32) * 5 / 9
    return None


def threshold(text: str, words: set[str]) -> float:
    """The fever (°C) that is a red flag for whom the message is about: the youngest named."""
    ages = [_months(match) for match in _AGE.finditer(text)]
    if "newborn" in words or "neonate" in words or any(age < 3 for age in ages):
        return BABY_FEVER_C
    if BABY_WORDS & words and not ages:
        return BABY_FEVER_C
    if CHILD_WORDS & words or any(age < 16 * 12 for age in ages):
        return CHILD_FEVER_C
    return ANYONE_FEVER_C


def _months(match: re.Match[str]) -> float:
    number, unit, short = match.groups()
    letter = (unit or short or "y")[0]
    return int(number) * _MONTHS_PER.get(letter, 12.0)
