"""The formulary: which drug a prescription names, and whether its daily dose is too high.

`formulary.json`, shipped beside this module, lists the antibiotics, antivirals, analgesics
and antipyretics prescribed for the classifier's findings, with adult and paediatric maximum
daily doses and their sources. It is a screening ceiling written from memory of those sources
(the file says so): a dose above it raises a warning that the pharmacist must override with a
reason before completing the review (`prescriptions.py`); it never refuses a prescription.

A drug is found by its RxNorm or SNOMED CT code, else by name, tolerating case, punctuation,
brand names and small typos ("Amoxicilin" -> amoxicillin). The daily dose is each
dosageInstruction's doseQuantity, converted to the formulary's unit, times the
administrations per day its timing.repeat gives.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

FORMULARY_PATH = Path(__file__).with_name("formulary.json")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"

# A name typed with a typo still matches when difflib's ratio reaches this. 0.88 accepts one
# or two slips in a long name ("amoxicilin": 0.95) and refuses a different drug with a
# shared stem ("ofloxacin" against "levofloxacin": 0.86).
NAME_SIMILARITY = 0.88

# Mass units, in milligrams: UCUM codes and the words people type.
MILLIGRAMS_PER = {"g": 1000.0, "gram": 1000.0, "gm": 1000.0, "mg": 1.0, "milligram": 1.0,
                  "ug": 0.001, "mcg": 0.001, "µg": 0.001, "microgram": 0.001}
# UCUM units of time (timing.repeat.periodUnit), in days.
DAYS_PER = {"s": 1 / 86400, "min": 1 / 1440, "h": 1 / 24, "d": 1.0, "wk": 7.0, "mo": 30.0,
            "a": 365.0}

# Detected issue codes (HL7 v3 ActCode), used on the DetectedIssue a warning is served as.
HIGH_DOSE_FOR_AGE = "DOSEHINDA"
HIGH_DOSE_FOR_WEIGHT = "DOSEHINDW"
AGE_ALERT = "AGE"
DOSE_UNCHECKED = "DOSE"  # dosage problem: the dose could not be checked


@dataclass(frozen=True)
class AgeBand:
    below_years: float
    max_daily: float


@dataclass(frozen=True)
class Drug:
    name: str
    synonyms: tuple[str, ...]
    codes: frozenset[tuple[str, str]]  # (system, code)
    unit: str
    adult_max_daily: float
    adult_from_years: float
    child_max_daily_per_kg: float | None
    bands: tuple[AgeBand, ...]
    min_age_years: float | None
    component: str | None  # for a combination: the component whose dose is limited
    sources: tuple[str, ...]

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Drug:
        codes = entry.get("codes", {})
        child = entry.get("child", {})
        return cls(
            name=entry["name"], synonyms=tuple(entry.get("synonyms", ())),
            codes=frozenset([(RXNORM, c) for c in codes.get("rxnorm", [])] +
                            [(SNOMED, c) for c in codes.get("snomed", [])]),
            unit=entry["unit"], adult_max_daily=float(entry["adult"]["max_daily"]),
            adult_from_years=float(entry.get("adult_from_years", 18)),
            child_max_daily_per_kg=child.get("max_daily_per_kg"),
            bands=tuple(sorted((AgeBand(float(b["below_years"]), float(b["max_daily"]))
                                for b in child.get("bands", [])),
                               key=lambda band: band.below_years)),
            min_age_years=entry.get("min_age_years"), component=entry.get("component"),
            sources=tuple(entry.get("sources", ())),
        )

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.synonyms)


@dataclass(frozen=True)
class DoseWarning:
    """One reason a prescription needs the pharmacist's override; stored with it as JSON."""

    code: str  # HIGH_DOSE_FOR_AGE, HIGH_DOSE_FOR_WEIGHT, AGE_ALERT or DOSE_UNCHECKED
    drug: str
    message: str
    daily_dose: float | None = None
    limit: float | None = None
    unit: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DoseWarning:
        return cls(**data)


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def _number(value: float) -> str:
    return f"{value:,.6g}"


class Formulary:
    def __init__(self, drugs: Iterable[Drug]) -> None:
        self.drugs = tuple(drugs)

    @classmethod
    def load(cls, path: Path = FORMULARY_PATH) -> Formulary:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(Drug.from_entry(entry) for entry in data["drugs"])

    def match(self, name: str | None, codings: Iterable[Mapping[str, Any]] = ()) -> Drug | None:
        """The drug a code or a name names; None when the formulary does not list it."""
        for coding in codings:
            key = (coding.get("system"), coding.get("code"))
            for drug in self.drugs:
                if key in drug.codes:
                    return drug
        text = _normalized(name or "")
        if not text:
            return None
        words = text.split()
        best: tuple[float, int, Drug] | None = None
        for drug in self.drugs:
            for candidate in map(_normalized, drug.names):
                size = len(candidate.split())
                if text == candidate or text.startswith(candidate + " "):
                    ratio = 1.0
                else:
                    ratio = difflib.SequenceMatcher(
                        None, " ".join(words[:size]), candidate).ratio()
                if ratio >= NAME_SIMILARITY and (best is None or
                                                 (ratio, size) > best[:2]):
                    best = (ratio, size, drug)
        return best[2] if best else None

    def check(self, drug: Drug, dosages: Iterable[Mapping[str, Any]], *,
              age_years: float | None, weight_kg: float | None = None) -> list[DoseWarning]:
        """Warnings for these FHIR dosageInstruction entries given to a patient of this age
        (None: unknown, adult limits apply) and, where known, weight."""
        warnings: list[DoseWarning] = []
        label = drug.name + (f" ({drug.component} component)" if drug.component else "")
        if drug.min_age_years is not None and age_years is not None and \
                age_years < drug.min_age_years:
            warnings.append(DoseWarning(
                AGE_ALERT, drug.name,
                f"{drug.name} is not recommended under {drug.min_age_years:g} years; "
                f"the patient is {int(age_years)} years old"))
        limit, basis, code = _limit(drug, age_years, weight_kg)
        for dosage in dosages:
            quantity = _dose_quantity(dosage)
            if quantity is None:
                continue
            daily = daily_dose(dosage, drug.unit)
            if daily is None:
                warnings.append(DoseWarning(
                    DOSE_UNCHECKED, drug.name,
                    f"{drug.name}: a dose in {quantity.get('unit') or quantity.get('code')!r} "
                    f"cannot be checked against the formulary's {drug.unit} limit; state the "
                    f"dose in g, mg or mcg"))
            elif daily > limit:
                warnings.append(DoseWarning(
                    code, drug.name,
                    f"{label}: {_number(daily)} {drug.unit} a day exceeds the {basis} of "
                    f"{_number(limit)} {drug.unit} a day",
                    daily_dose=daily, limit=limit, unit=drug.unit))
        return warnings


def _limit(drug: Drug, age_years: float | None, weight_kg: float | None
           ) -> tuple[float, str, str]:
    """The maximum daily dose for this patient, the words naming its basis, and its code."""
    if age_years is None:
        return drug.adult_max_daily, "adult maximum (age unknown)", HIGH_DOSE_FOR_AGE
    if age_years >= drug.adult_from_years:
        return drug.adult_max_daily, "adult maximum", HIGH_DOSE_FOR_AGE
    band = next((b for b in drug.bands if age_years < b.below_years), None)
    cap = band.max_daily if band else drug.adult_max_daily
    if weight_kg is not None and drug.child_max_daily_per_kg is not None:
        by_weight = drug.child_max_daily_per_kg * weight_kg
        if by_weight < cap:
            return (by_weight, f"maximum of {drug.child_max_daily_per_kg:g} {drug.unit}/kg "
                    f"for {weight_kg:g} kg", HIGH_DOSE_FOR_WEIGHT)
    age = f"{int(age_years)} years" if age_years >= 1 else f"{int(age_years * 12)} months"
    return cap, f"maximum for a child aged {age}", HIGH_DOSE_FOR_AGE


def _dose_quantity(dosage: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for dose_and_rate in dosage.get("doseAndRate") or []:
        quantity = dose_and_rate.get("doseQuantity")
        if quantity and quantity.get("value") is not None:
            return quantity
    return None


def milligrams(quantity: Mapping[str, Any]) -> float | None:
    """A Quantity's mass in mg (UCUM code first, else the unit as typed); None: not a mass."""
    units = [quantity.get("code")] if quantity.get("system") == UCUM else []
    units.append(quantity.get("unit"))
    for unit in units:
        key = (unit or "").strip().lower()
        key = key[:-1] if key.endswith("s") and key[:-1] in MILLIGRAMS_PER else key
        if key in MILLIGRAMS_PER:
            return float(quantity["value"]) * MILLIGRAMS_PER[key]
    return None


def administrations_per_day(dosage: Mapping[str, Any]) -> float:
    """How many doses a day timing.repeat gives, counting the busiest day: a dose every 8 h
    is 3; twice every 2 days is 2 (both may fall on one day); no timing counts as one."""
    repeat = (dosage.get("timing") or {}).get("repeat") or {}
    frequency = float(repeat.get("frequencyMax") or repeat.get("frequency") or 1)
    period = repeat.get("period")  # not periodMax: the shorter period gives more doses
    if period is None:
        return frequency
    days = float(period) * DAYS_PER.get(repeat.get("periodUnit", "d"), 1.0)
    return frequency * max(1.0, 1.0 / days) if days > 0 else frequency


def daily_dose(dosage: Mapping[str, Any], unit: str) -> float | None:
    """The dose a day in `unit` (mg), or None when the dose is not a mass."""
    quantity = _dose_quantity(dosage)
    if quantity is None:
        return None
    dose = milligrams(quantity)
    if dose is None:
        return None
    return dose * administrations_per_day(dosage) / MILLIGRAMS_PER[unit]


def age_in_years(birth_date: date | None, on: date) -> float | None:
    if birth_date is None:
        return None
    return (on - birth_date).days / 365.25


@functools.cache
def shipped() -> Formulary:
    """The formulary shipped with the project, read once."""
    return Formulary.load()
