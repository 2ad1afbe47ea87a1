"""The declared search parameters: `PARAMETERS`, the single source of what is searchable.

The CapabilityStatement is generated from it (`parameter_types`). Each parameter is a
`Param` carrying its FHIR type and the modifiers it supports, built with one constructor per
FHIR type: `token`, `date_param`, `string_param`, `reference_param` (values.py holds the
value rules they apply).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, String, and_, cast, false, func, not_, or_, true

from adapters.fhir.common import (
    DICOM_UID,
    OBSERVATION_CATEGORY,
    finding_labels_for_code,
    observation_code_matches,
)
from adapters.fhir.task import TASK_STATUS
from csss_fhir.errors import InvalidInputError
from csss_fhir.models import AiPrediction, DoctorReview
from csss_fhir.search.values import (
    date_clause,
    like_escape,
    reference_id,
    reference_parts,
    split_or,
    string_clause,
    token_parts,
)

Clause = Callable[[type, str, str | None], ColumnElement[bool]]
TokenClause = Callable[[type, str | None, str], ColumnElement[bool]]


@dataclass(frozen=True)
class Param:
    """A search parameter: its FHIR type, its clause builder and its modifiers."""

    type: str  # token | date | string | reference
    clause: Clause  # (model, one value, modifier) -> clause
    modifiers: frozenset[str] = frozenset()

    def __call__(self, model: type, value: str, modifier: str | None = None
                 ) -> ColumnElement[bool]:
        return self.clause(model, value, modifier)

    def supports(self, modifier: str | None) -> bool:
        return modifier is None or modifier in self.modifiers

    def where(self, model: type, value: str, modifier: str | None = None
              ) -> ColumnElement[bool]:
        """The clause for one `name[:modifier]=value` pair: comma is OR, token `:not` negates.

        Raises:
            InvalidInputError: the value holds no alternative at all (`status=,`).
        """
        negate = modifier == "not" and self.type == "token"
        clauses = [self.clause(model, v, None if negate else modifier) for v in split_or(value)]
        if not clauses:
            raise InvalidInputError(f"{value!r} holds no value to search for; send one, or "
                                    "several separated by commas")
        clause = or_(*clauses) if len(clauses) > 1 else clauses[0]
        return not_(clause) if negate else clause


# --- one constructor per FHIR search parameter type ----------------------------------------

def token(clause: TokenClause) -> Param:
    """A token parameter from `clause(model, system, code)`; supports `:not`."""
    def build(model: type, value: str, modifier: str | None) -> ColumnElement[bool]:
        system, code = token_parts(value)
        return clause(model, system, code)
    return Param("token", build, frozenset({"not"}))


def code_in(attribute: str, system: str | None = None) -> Param:
    """A token over a plain code column (status...), optionally bound to one system."""
    def build(model: type, wanted_system: str | None, code: str) -> ColumnElement[bool]:
        if wanted_system and system and wanted_system != system:
            return false()
        return getattr(model, attribute) == code
    return token(build)


def date_param(attribute: str, *, date_column: bool = False) -> Param:
    return Param("date", lambda m, v, _: date_clause(getattr(m, attribute), v,
                                                      date_column=date_column))


def string_param(*attributes: str) -> Param:
    return Param("string", lambda m, v, mod: string_clause(
        [getattr(m, a) for a in attributes], v, mod), frozenset({"exact", "contains"}))


def reference_param(attribute: str, target: str) -> Param:
    return Param("reference", lambda m, v, mod: getattr(m, attribute) == reference_id(
        v, target, mod), frozenset({target}))


# --- per-type clauses ----------------------------------------------------------------------

def _common(patient_attr: str | None) -> dict[str, Param]:
    params = {
        "_id": token(lambda m, s, code: m.id == code),
        "_lastUpdated": date_param("updated_at"),
    }
    if patient_attr:
        params["patient"] = reference_param(patient_attr, "Patient")
        params["subject"] = reference_param(patient_attr, "Patient")
    return params


def _email(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    return func.lower(m.email) == code.lower()


def _task_status(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    states = [s for s, status in TASK_STATUS.items() if status == code]
    return m.state.in_(states) if states else false()


def _patient_identifier(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    clause = m.mrn == code
    if system is None:
        return clause
    return and_(clause, m.mrn_system == system) if system else and_(clause,
                                                                      m.mrn_system.is_(None))


def _study_identifier(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    if system not in (None, DICOM_UID):
        return false()
    return m.study_uid == code.removeprefix("urn:oid:")


def _observation_category(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    return true() if code == "imaging" and system in (None, OBSERVATION_CATEGORY) else false()


def _observation_code(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    return true() if observation_code_matches(system, code) else false()


def _value_concept(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    keys = finding_labels_for_code(system, code)
    column = m.label if m is AiPrediction else m.finding
    normalised = func.lower(func.replace(column, "_", " "))
    return normalised.in_(keys) if keys else false()


def _derived_from(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    """An Observation derives from its ImagingStudy; the doctor's also from the AI's."""
    parts = reference_parts(value)
    kind = modifier or (parts[-2] if len(parts) >= 2 else None)
    if m is DoctorReview and kind in (None, "Observation"):
        clause = m.prediction_id == parts[-1]
        return or_(clause, m.scan_id == parts[-1]) if kind is None else clause
    if kind in (None, "ImagingStudy"):
        return m.scan_id == parts[-1]
    return false()


def _provenance_target(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    parts = reference_parts(value)
    if len(parts) >= 2:
        reference = f"{parts[-2]}/{parts[-1]}"
        if parts[-2] == "ImagingStudy":
            return m.scan_id == parts[-1]
        return cast(m.targets, String).like(f'%"{like_escape(reference)}"%', escape="\\")
    return or_(m.scan_id == parts[-1],
               cast(m.targets, String).like(f'%/{like_escape(parts[-1])}"%', escape="\\"))


def _agent(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    parts = reference_parts(value)
    if len(parts) >= 2:
        return m.agent_reference == f"{parts[-2]}/{parts[-1]}"
    return m.agent_reference.like(f"%/{like_escape(parts[-1])}", escape="\\")


PARAMETERS: dict[str, dict[str, Param]] = {
    "Patient": {
        **_common("id"),
        "identifier": token(_patient_identifier),
        "name": string_param("family_name", "given_names"),
        "family": string_param("family_name"),
        "given": string_param("given_names"),
        "birthdate": date_param("birth_date", date_column=True),
        "email": token(_email),
        "active": token(lambda m, s, code: m.active == (code == "true")),
    },
    "Practitioner": {**_common(None),
                     "name": string_param("name"),
                     "email": token(_email)},
    "PractitionerRole": {**_common(None),
                         "role": token(lambda m, s, code: m.role == code)},
    "ImagingStudy": {**_common("patient_id"),
                     "status": code_in("status"),
                     "identifier": token(_study_identifier),
                     "started": date_param("started"),
                     "modality": token(lambda m, s, code: m.modality == code)},
    "Task": {**_common("patient_id"),
             "status": token(_task_status),
             "focus": reference_param("scan_id", "ImagingStudy"),
             "business-status": token(lambda m, s, code: m.state == code)},
    "Observation": {**_common("patient_id"),
                    "status": code_in("status"),
                    "category": token(_observation_category),
                    "code": token(_observation_code),
                    "value-concept": token(_value_concept),
                    "derived-from": Param("reference", _derived_from,
                                          frozenset({"Observation", "ImagingStudy"}))},
    "MedicationRequest": {**_common("patient_id"),
                          "status": code_in("status"),
                          "authoredon": date_param("authored_on")},
    "DiagnosticReport": {**_common("patient_id"),
                         "status": code_in("status"),
                         "issued": date_param("issued")},
    "Provenance": {**_common("patient_id"),
                   "target": Param("reference", _provenance_target)},
    "Device": {**_common(None)},
    # The audit trail (issue 4's table; readable by admins only, see security/access.py).
    "AuditEvent": {**_common("patient_id"),
                   "agent": Param("reference", _agent),
                   "date": date_param("recorded")},
}


def parameter_types() -> dict[str, dict[str, str]]:
    """{type: {parameter: FHIR search type}} for the CapabilityStatement."""
    return {resource_type: {name: p.type for name, p in sorted(params.items())}
            for resource_type, params in PARAMETERS.items()}
