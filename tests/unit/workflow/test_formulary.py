"""The formulary: drugs found by code or name (typos too), daily doses in the formulary's
unit, and limits by age, by weight and by age band."""

from __future__ import annotations

from datetime import date

import pytest

from csss_fhir.workflow import formulary
from csss_fhir.workflow.formulary import (
    AGE_ALERT,
    DOSE_UNCHECKED,
    HIGH_DOSE_FOR_AGE,
    HIGH_DOSE_FOR_WEIGHT,
    RXNORM,
    UCUM,
    administrations_per_day,
    daily_dose,
)

BOOK = formulary.shipped()


def dosage(value: float, unit: str, *, frequency: int = 1, period: float = 1,
           period_unit: str = "d", ucum: bool = True) -> dict:
    quantity = {"value": value, "unit": unit}
    if ucum:
        quantity.update(system=UCUM, code=unit)
    return {"timing": {"repeat": {"frequency": frequency, "period": period,
                                  "periodUnit": period_unit}},
            "doseAndRate": [{"doseQuantity": quantity}]}


@pytest.mark.parametrize(("text", "expected"), [
    ("Amoxicillin", "amoxicillin"),
    ("AMOXICILLIN 500 mg capsules", "amoxicillin"),
    ("Amoxicilin", "amoxicillin"),  # the typo in issue 11
    ("amoxycillin", "amoxicillin"),
    ("Amoxicillin-clavulanate 875/125", "amoxicillin-clavulanate"),
    ("co-amoxiclav", "amoxicillin-clavulanate"),
    ("Acetaminophen", "paracetamol"),
    ("Paracetamool", "paracetamol"),
    ("Paxlovid", "nirmatrelvir-ritonavir"),
    ("Tamiflu", "oseltamivir"),
    ("levofloxacin", "levofloxacin"),
])
def test_drugs_are_found_by_name_tolerating_case_brands_and_typos(text, expected):
    assert BOOK.match(text).name == expected


@pytest.mark.parametrize("text", ["ofloxacin", "erythromycin", "salbutamol", "", "500 mg"])
def test_other_drugs_are_not_mistaken_for_a_listed_one(text):
    assert BOOK.match(text) is None


def test_a_code_wins_over_the_name():
    assert BOOK.match("Brand X", [{"system": RXNORM, "code": "5640"}]).name == "ibuprofen"


def test_every_entry_names_its_sources_and_has_sane_limits():
    for drug in BOOK.drugs:
        assert drug.sources, drug.name
        assert drug.adult_max_daily > 0
        assert all(band.max_daily <= drug.adult_max_daily for band in drug.bands), drug.name


@pytest.mark.parametrize(("value", "unit", "expected_mg"), [
    (500, "mg", 1500), (1, "g", 3000), (250000, "ug", 750), (0.5, "g", 1500)])
def test_the_daily_dose_converts_units_and_counts_the_doses(value, unit, expected_mg):
    assert daily_dose(dosage(value, unit, frequency=3), "mg") == pytest.approx(expected_mg)


def test_typed_units_without_ucum_are_understood_and_non_mass_units_are_not():
    assert daily_dose(dosage(2, "grams", ucum=False), "mg") == 2000
    assert daily_dose(dosage(2, "mcg", ucum=False), "mg") == pytest.approx(0.002)
    assert daily_dose(dosage(5, "mL"), "mg") is None


@pytest.mark.parametrize(("frequency", "period", "unit", "per_day"), [
    (1, 8, "h", 3), (3, 1, "d", 3), (2, 1, "d", 2), (1, 1, "wk", 1), (1, 12, "h", 2)])
def test_administrations_per_day_from_timing_repeat(frequency, period, unit, per_day):
    assert administrations_per_day(dosage(1, "mg", frequency=frequency, period=period,
                                          period_unit=unit)) == per_day


def test_the_issue_typo_dose_warns_naming_the_drug_and_the_adult_limit():
    drug = BOOK.match("Amoxicilin")
    [warning] = BOOK.check(drug, [dosage(5000, "mg", frequency=3)], age_years=40)
    assert warning.code == HIGH_DOSE_FOR_AGE
    assert warning.daily_dose == 15000 and warning.limit == 4000
    assert warning.message == ("amoxicillin: 15,000 mg a day exceeds the adult maximum of "
                               "4,000 mg a day")
    assert BOOK.check(drug, [dosage(500, "mg", frequency=3)], age_years=40) == []
    assert BOOK.check(drug, [dosage(1, "g", frequency=3)], age_years=40) == []
    assert BOOK.check(drug, [dosage(1.5, "g", frequency=3)], age_years=40)


def test_a_child_without_a_weight_gets_the_age_band_cap():
    paracetamol = BOOK.match("paracetamol")
    adult_dose = [dosage(1, "g", frequency=4)]
    assert BOOK.check(paracetamol, adult_dose, age_years=30) == []
    [warning] = BOOK.check(paracetamol, adult_dose, age_years=5)
    assert warning.code == HIGH_DOSE_FOR_AGE and warning.limit == 1000
    assert "maximum for a child aged 5 years" in warning.message
    assert BOOK.check(paracetamol, [dosage(240, "mg", frequency=4)], age_years=5) == []
    [infant] = BOOK.check(paracetamol, [dosage(120, "mg", frequency=4)], age_years=0.4)
    assert "aged 4 months" in infant.message


def test_a_child_with_a_known_weight_gets_the_per_kg_limit_within_the_band_cap():
    amoxicillin = BOOK.match("amoxicillin")
    dose = [dosage(500, "mg", frequency=3)]  # 1500 mg a day
    assert BOOK.check(amoxicillin, dose, age_years=3) == []  # band cap 1500
    [warning] = BOOK.check(amoxicillin, dose, age_years=3, weight_kg=12)  # 90 x 12 = 1080
    assert warning.code == HIGH_DOSE_FOR_WEIGHT and warning.limit == 1080
    assert "90 mg/kg for 12 kg" in warning.message


def test_an_unknown_age_uses_adult_limits_and_says_so():
    [warning] = BOOK.check(BOOK.match("ibuprofen"), [dosage(800, "mg", frequency=4)],
                           age_years=None)
    assert "adult maximum (age unknown)" in warning.message


def test_age_restricted_drugs_and_unconvertible_units_warn_too():
    codes = {w.code for w in BOOK.check(BOOK.match("doxycycline"),
                                        [dosage(5, "mL", frequency=2)], age_years=7)}
    assert codes == {AGE_ALERT, DOSE_UNCHECKED}


def test_age_in_years():
    assert formulary.age_in_years(date(2020, 6, 1), date(2025, 6, 2)) == pytest.approx(5, 0.01)
    assert formulary.age_in_years(None, date(2025, 6, 2)) is None
