"""The declared search parameters: `PARAMETERS`, the single source of what is searchable.

The CapabilityStatement is generated from it (`parameter_types`, `parameter_modifiers`).
Each parameter is a `Param` carrying its FHIR type and the modifiers it supports, built with
one constructor per FHIR type: `token`, `date_param`, `string_param`, `reference_param`
(values.py holds the value rules they apply).

Every parameter answers `:missing` (R4: `true` finds the resources whose element has no
value, `false` those whose element has one) through its `present` clause: whether a row's
resource, as rendered, holds the element. An element every resource holds (`_id`, a
required `status`) is `always` present: `:missing=true` finds nothing, `false` everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from adapters.fhir.common import (
    DCM,
    DICOM_UID,
    FINDING_SYSTEM,
    MRN_SYSTEM,
    OBSERVATION_CATEGORY,
    SNOMED,
    finding_labels_for_code,
    observation_code_matches,
)
from adapters.fhir.patient import to_fhir_patient
from adapters.fhir.practitioner import ROLE_CODES, ROLE_SYSTEM
from adapters.fhir.task import STATE_SYSTEM, TASK_STATUS
from csss_fhir.errors import InvalidInputError
from csss_fhir.models import AiPrediction, DoctorReview
from csss_fhir.search.values import (
    date_clause,
    like_escape,
    missing_flag,
    reference_id,
    reference_parts,
    split_or,
    string_matches,
    token_parts,
)

Clause = Callable[..., ColumnElement[bool]]
# (model, session) -> "the row's resource holds the element", for `:missing`.
Presence = Callable[[type, Session], ColumnElement[bool]]
# (model, system, code): system None is any system, "" none; code "" is any code (`system|`).
TokenClause = Callable[[type, str | None, str], ColumnElement[bool]]


def always(model: type, session: Session) -> ColumnElement[bool]:
    """The presence of an element every resource of the type holds."""
    return true()


def column_present(attribute: str) -> Presence:
    """The presence of an element rendered from one column whenever it holds a value."""
    return lambda model, session: getattr(model, attribute).is_not(None)


MISSING = "missing"


@dataclass(frozen=True)
class Param:
    """A search parameter: its FHIR type, its clause builder and its modifiers (`:missing`
    is every parameter's, through `present`)."""

    type: str  # token | date | string | reference
    clause: Clause  # (model, one value, modifier[, session]) -> clause
    present: Presence  # does the row's resource hold the element (`:missing`)
    modifiers: frozenset[str] = frozenset()
    needs_session: bool = False  # the clause reads rows first (string matching, see fold)
    # `_sort=<name>`: the column a model is ordered by (None: the parameter cannot sort).
    sort: Callable[[type], Any] | None = None

    def sorted_by(self, attribute: str | Callable[[type], Any]) -> Param:
        """This parameter, sortable by a column (its name, or a function of the model)."""
        column = attribute if callable(attribute) else (lambda m: getattr(m, attribute))
        return replace(self, sort=column)

    def supports(self, modifier: str | None) -> bool:
        return modifier is None or modifier == MISSING or modifier in self.modifiers

    @property
    def all_modifiers(self) -> list[str]:
        """Every modifier the parameter takes, sorted (the CapabilityStatement's list)."""
        return sorted(self.modifiers | {MISSING})

    def where(self, model: type, value: str, modifier: str | None = None,
              session: Session | None = None) -> ColumnElement[bool]:
        """The clause for one `name[:modifier]=value` pair: comma is OR, token `:not` negates
        (and so keeps the resources that lack the element).

        Raises:
            InvalidInputError: the value holds no alternative at all (`status=,`), or
            `:missing` is given something other than true or false.
        """
        if modifier == MISSING:
            return self.missing(model, value, session)
        negate = modifier == "not" and self.type == "token"
        extra = {"session": session} if self.needs_session else {}
        clauses = [self.clause(model, v, None if negate else modifier, **extra)
                   for v in split_or(value)]
        if not clauses:
            raise InvalidInputError(f"{value!r} holds no value to search for; send one, or "
                                    "several separated by commas")
        clause = or_(*clauses) if len(clauses) > 1 else clauses[0]
        # SQL's NOT of NULL (an absent element) is NULL, which would drop the row.
        return not_(func.coalesce(clause, false())) if negate else clause

    def missing(self, model: type, value: str, session: Session | None
                ) -> ColumnElement[bool]:
        """`:missing=true`: rows whose resource lacks the element; `false`: those holding it.

        Raises:
            InvalidInputError: a value other than true or false (values.missing_flag).
        """
        wanted_missing = missing_flag("the parameter", value)
        # SQL's NOT of NULL is NULL, which would drop the row: compare a definite boolean.
        present = func.coalesce(self.present(model, session), false())
        return not_(present) if wanted_missing else present


# --- one constructor per FHIR search parameter type ----------------------------------------

def token(clause: TokenClause, present: Presence = always) -> Param:
    """A token parameter from `clause(model, system, code)`; supports `:not`."""
    def build(model: type, value: str, modifier: str | None) -> ColumnElement[bool]:
        system, code = token_parts(value)
        return clause(model, system, code)
    return Param("token", build, present, frozenset({"not"}))


def system_matches(wanted: str | None, *systems: str) -> bool:
    """Does a token's system part (None: any, "": none) admit a code of one of `systems`?"""
    return wanted is None or wanted in systems


def code_in(attribute: str, system: str | None = None,
            codes: Callable[[str], Iterable[str]] | None = None) -> Param:
    """A token over a column holding a code of `system` (None: a `code` element, whose
    system is implicit); `codes` maps a rendered code to the stored values it means."""
    def build(model: type, wanted_system: str | None, code: str) -> ColumnElement[bool]:
        column = getattr(model, attribute)
        if system is not None and not system_matches(wanted_system, system):
            return false()
        if code == "":
            return column.is_not(None)
        return column.in_(list(codes(code))) if codes else column == code
    return token(build, column_present(attribute)).sorted_by(attribute)


def _role_code(m: type) -> Any:
    """The practitioner-role code a User row is rendered with, for `_sort=role`."""
    return case({role: code for role, (code, _) in ROLE_CODES.items()}, value=m.role)


def date_param(attribute: str, *, date_column: bool = False) -> Param:
    return Param("date", lambda m, v, _: date_clause(getattr(m, attribute), v,
                                                      date_column=date_column),
                 column_present(attribute)).sorted_by(attribute)


def string_param(texts: Callable[[Any], Iterable[str | None]]) -> Param:
    """A string parameter over the texts `texts(row)` gives for a row.

    Matching folds accents and case (values.fold), which SQL cannot do the same way on every
    database; so the rows' texts are read and matched here, and the clause keeps their ids.
    """
    def build(model: type, value: str, modifier: str | None, session: Session
              ) -> ColumnElement[bool]:
        ids = [row.id for row in session.scalars(select(model))
               if string_matches(texts(row), value, modifier)]
        return model.id.in_(ids)

    def present(model: type, session: Session) -> ColumnElement[bool]:
        return model.id.in_([row.id for row in session.scalars(select(model))
                             if any(texts(row))])
    return Param("string", build, present, frozenset({"exact", "contains"}),
                 needs_session=True)


def _names(row: Any) -> list[dict[str, Any]]:
    """The Patient's HumanNames as served: from the columns, or (created through FHIR) as
    rendered, so that every name sent, its prefixes and its text are searched."""
    if not getattr(row, "resource_json", None):
        return [{"family": row.family_name, "given": row.given_names.split(),
                 "text": row.display_name}]
    return [name.model_dump(exclude_none=True) for name in to_fhir_patient(row).name or []]


def _patient_family(row: Any) -> list[str | None]:
    return [n.get("family") for n in _names(row)]


def _patient_given(row: Any) -> list[str | None]:
    return [given for n in _names(row) for given in n.get("given") or []]


def _patient_name(row: Any) -> list[str | None]:
    """Every part of every name, and each name's text (HumanName.text)."""
    return [part for n in _names(row)
            for part in (n.get("family"), n.get("text"),
                         *(p for key in ("given", "prefix", "suffix") for p in n.get(key) or []))]


def reference_param(attribute: str, target: str) -> Param:
    """A reference to `target` held in `attribute`. A reference to another type is a fair
    question (R4's `focus` and `subject` admit other types) whose answer here is nothing;
    a `:Type` modifier naming another type is refused (values.reference_id)."""
    def build(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
        parts = reference_parts(value)
        if modifier is None and len(parts) >= 2 and parts[-2] != target:
            return false()
        return getattr(m, attribute) == reference_id(value, target, modifier)
    return Param("reference", build, column_present(attribute), frozenset({target})
                 ).sorted_by(attribute)


# --- per-type clauses ----------------------------------------------------------------------

def _common(patient_attr: str | None) -> dict[str, Param]:
    params = {
        "_id": token(lambda m, s, code: m.id == code).sorted_by("id"),
        "_lastUpdated": date_param("updated_at"),
    }
    if patient_attr:
        params["patient"] = reference_param(patient_attr, "Patient")
        params["subject"] = reference_param(patient_attr, "Patient")
    return params


def _email(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    return func.lower(m.email) == code.lower()


def _task_status(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    states = [s for s, status in TASK_STATUS.items() if status == code or code == ""]
    return m.state.in_(states) if states and system != "" else false()


def _roles(code: str) -> list[str]:
    """The stored roles rendered with a practitioner-role code (`ict` is our admin)."""
    return [role for role, (rendered, _) in ROLE_CODES.items() if rendered == code]


def _patient_identifier(m: type, value: str, modifier: str | None, session: Session
                        ) -> ColumnElement[bool]:
    """The MRN column, or any identifier a Patient created through FHIR was sent with (kept
    in its resource_json: an official national id beside the MRN, say)."""
    system, code = token_parts(value)
    clause = m.mrn == code if code else m.mrn.is_not(None)
    if system is not None:
        # Rows stored before every MRN named its system are rendered with ours.
        clause = and_(clause, func.coalesce(m.mrn_system, MRN_SYSTEM) == system) if system \
            else false()
    sent = [row.id for row in session.scalars(select(m).where(m.resource_json.is_not(None)))
            if any(_identifier_matches(i, system, code)
                   for i in (row.resource_json or {}).get("identifier") or [])]
    return or_(clause, m.id.in_(sent)) if sent else clause


def _patient_has_identifier(m: type, session: Session) -> ColumnElement[bool]:
    """An MRN, or any identifier a Patient created through FHIR was sent with."""
    sent = [row.id for row in session.scalars(select(m).where(m.resource_json.is_not(None)))
            if (row.resource_json or {}).get("identifier")]
    return or_(m.mrn.is_not(None), m.id.in_(sent))


def _identifier_matches(identifier: dict[str, Any], system: str | None, code: str) -> bool:
    if system is not None and identifier.get("system", "") != system:
        return False
    return identifier.get("value") == code if code else "value" in identifier


def _patient_active(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    """A boolean token: `true` or `false`, with no system (a system matches nothing)."""
    if system:
        return false()
    if code not in ("true", "false"):
        raise InvalidInputError(f"active is true or false, not {code!r}")
    return m.active == (code == "true")


def _study_identifier(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    if not system_matches(system, DICOM_UID):
        return false()
    return m.study_uid == code.removeprefix("urn:oid:") if code else m.study_uid.is_not(None)


def _observation_category(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    if code == "":
        return true() if system == OBSERVATION_CATEGORY else false()
    return true() if code == "imaging" and system_matches(system, OBSERVATION_CATEGORY) \
        else false()


def _observation_code(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    if code == "":
        return true() if system == DCM else false()
    return true() if observation_code_matches(system, code) else false()


def _value_concept(m: type, system: str | None, code: str) -> ColumnElement[bool]:
    if code == "":
        return true() if system in (FINDING_SYSTEM, SNOMED) else false()
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
    if "_history" in parts[:-1]:  # a version-specific reference, as targets are rendered
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2:
        reference = f"{parts[-2]}/{parts[-1]}"
        if parts[-2] == "ImagingStudy":
            return m.scan_id == parts[-1]
        return cast(m.targets, String).like(f'%"{like_escape(reference)}"%', escape="\\")
    return or_(m.scan_id == parts[-1],
               cast(m.targets, String).like(f'%/{like_escape(parts[-1])}"%', escape="\\"))


def _provenance_patient_target(m: type, value: str, modifier: str | None
                               ) -> ColumnElement[bool]:
    return _provenance_target(m, f"Patient/{reference_id(value, 'Patient', modifier)}", None)


def _audit_patient(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    """R4's AuditEvent-patient: the Patient an entity is (whose data was touched), or the
    agent when the patient acted (a patient signing in touches no record)."""
    patient_id = reference_id(value, "Patient", modifier)
    return or_(m.patient_id == patient_id, m.agent_reference == f"Patient/{patient_id}")


def _audit_has_patient(m: type, session: Session) -> ColumnElement[bool]:
    return or_(m.patient_id.is_not(None),
               func.coalesce(m.agent_reference, "").like("Patient/%"))


def _provenance_has_patient(m: type, session: Session) -> ColumnElement[bool]:
    """A target that is a Patient (targets are stored as JSON: ["Patient/<id>", ...])."""
    return cast(m.targets, String).like('%"Patient/%')


def _agent(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    parts = reference_parts(value)
    if len(parts) >= 2:
        return m.agent_reference == f"{parts[-2]}/{parts[-1]}"
    return m.agent_reference.like(f"%/{like_escape(parts[-1])}", escape="\\")


PARAMETERS: dict[str, dict[str, Param]] = {
    "Patient": {
        **_common("id"),
        "identifier": Param("token", _patient_identifier, _patient_has_identifier,
                            frozenset({"not"}), needs_session=True).sorted_by("mrn"),
        "name": string_param(_patient_name).sorted_by("family_name"),
        "family": string_param(_patient_family).sorted_by("family_name"),
        "given": string_param(_patient_given).sorted_by("given_names"),
        "birthdate": date_param("birth_date", date_column=True),
        "email": token(_email, column_present("email")).sorted_by("email"),
        "active": token(_patient_active).sorted_by("active"),
    },
    "Practitioner": {**_common(None),
                     "name": string_param(lambda row: [row.name]).sorted_by("name"),
                     "email": token(_email).sorted_by("email")},
    "PractitionerRole": {**_common(None),
                         "role": code_in("role", ROLE_SYSTEM, _roles).sorted_by(_role_code)},
    "ImagingStudy": {**_common("patient_id"),
                     "status": code_in("status"),
                     "identifier": token(_study_identifier).sorted_by("study_uid"),
                     "started": date_param("started"),
                     "modality": code_in("modality", DCM)},
    "Task": {**_common("patient_id"),
             "status": token(_task_status).sorted_by(
                 lambda m: case(TASK_STATUS, value=m.state)),  # as rendered
             "focus": reference_param("scan_id", "ImagingStudy"),
             "business-status": code_in("state", STATE_SYSTEM)},
    "Observation": {**_common("patient_id"),
                    "status": code_in("status"),
                    "category": token(_observation_category).sorted_by("id"),
                    "code": token(_observation_code).sorted_by("id"),
                    "value-concept": token(_value_concept).sorted_by(
                        lambda m: m.label if m is AiPrediction else m.finding),
                    "derived-from": Param("reference", _derived_from,
                                          column_present("scan_id"),
                                          frozenset({"Observation", "ImagingStudy"})
                                          ).sorted_by("scan_id")},
    "MedicationRequest": {**_common("patient_id"),
                          "status": code_in("status"),
                          "authoredon": date_param("authored_on")},
    "DiagnosticReport": {**_common("patient_id"),
                         "status": code_in("status"),
                         "issued": date_param("issued")},
    "Provenance": {**_common("patient_id"),
                   # R4's Provenance-patient: a target that is the Patient. Ours records
                   # workflow steps, whose patient is `scan-patient` (the scan's).
                   "patient": Param("reference", _provenance_patient_target,
                                    _provenance_has_patient, frozenset({"Patient"})),
                   "scan-patient": reference_param("patient_id", "Patient"),
                   "target": Param("reference", _provenance_target,
                                   column_present("scan_id")).sorted_by("scan_id")},
    "Device": {**_common(None)},
    # The audit trail (issue 4's table; readable by admins only, see security/access.py).
    "AuditEvent": {**_common("patient_id"),
                   "patient": Param("reference", _audit_patient, _audit_has_patient,
                                    frozenset({"Patient"})).sorted_by("patient_id"),
                   "agent": Param("reference", _agent, column_present("agent_reference")
                                  ).sorted_by("agent_reference"),
                   "date": date_param("recorded")},
}


def parameter_types() -> dict[str, dict[str, str]]:
    """{type: {parameter: FHIR search type}} for the CapabilityStatement."""
    return {resource_type: {name: p.type for name, p in sorted(params.items())}
            for resource_type, params in PARAMETERS.items()}


def parameter_modifiers() -> dict[str, dict[str, list[str]]]:
    """{type: {parameter: the modifiers it takes}} for the CapabilityStatement."""
    return {resource_type: {name: p.all_modifiers for name, p in sorted(params.items())}
            for resource_type, params in PARAMETERS.items()}


# --- what each parameter means: R4's SearchParameter, or ours ------------------------------

R4_SEARCH_PARAMETER = "http://hl7.org/fhir/SearchParameter/"
# The R4 SearchParameter (its id) a declared parameter implements; the `_common` ones and
# `patient`/`subject` are filled in by `standard_definition`.
_STANDARD: dict[tuple[str, str], str] = {
    ("Patient", "identifier"): "Patient-identifier",
    ("Patient", "name"): "Patient-name",
    ("Patient", "family"): "individual-family",
    ("Patient", "given"): "individual-given",
    ("Patient", "birthdate"): "individual-birthdate",
    ("Patient", "email"): "individual-email",
    ("Patient", "active"): "Patient-active",
    ("Practitioner", "name"): "Practitioner-name",
    ("Practitioner", "email"): "individual-email",
    ("PractitionerRole", "role"): "PractitionerRole-role",
    ("ImagingStudy", "status"): "ImagingStudy-status",
    ("ImagingStudy", "identifier"): "clinical-identifier",
    ("ImagingStudy", "started"): "ImagingStudy-started",
    ("ImagingStudy", "modality"): "ImagingStudy-modality",
    ("Task", "status"): "Task-status",
    ("Task", "focus"): "Task-focus",
    ("Task", "business-status"): "Task-business-status",
    ("Observation", "status"): "Observation-status",
    ("Observation", "category"): "Observation-category",
    ("Observation", "code"): "clinical-code",
    ("Observation", "value-concept"): "Observation-value-concept",
    ("Observation", "derived-from"): "Observation-derived-from",
    ("MedicationRequest", "status"): "medications-status",
    ("MedicationRequest", "authoredon"): "MedicationRequest-authoredon",
    ("DiagnosticReport", "status"): "DiagnosticReport-status",
    ("DiagnosticReport", "issued"): "DiagnosticReport-issued",
    ("Provenance", "patient"): "Provenance-patient",
    ("Provenance", "target"): "Provenance-target",
    ("AuditEvent", "patient"): "AuditEvent-patient",
    ("AuditEvent", "agent"): "AuditEvent-agent",
    ("AuditEvent", "date"): "AuditEvent-date",
}
# R4's `patient` of these types is clinical-patient; of Task, Task-patient (see above for
# Provenance and AuditEvent). Their `subject` is <Type>-subject.
_CLINICAL_PATIENT = frozenset({"ImagingStudy", "Observation", "MedicationRequest",
                               "DiagnosticReport"})
_R4_SUBJECT = frozenset({"ImagingStudy", "Observation", "MedicationRequest",
                         "DiagnosticReport", "Task"})


@dataclass(frozen=True)
class OwnParameter:
    """A parameter R4 does not define for its type (or defines otherwise): served as our own
    SearchParameter."""

    expression: str  # FHIRPath
    description: str


OWN_PARAMETERS: dict[tuple[str, str], OwnParameter] = {
    ("Patient", "patient"): OwnParameter(
        "Patient", "The Patient itself, by reference (Patient/<id>): the same as _id, so that "
        "every type searches by `patient` alike"),
    ("Patient", "subject"): OwnParameter(
        "Patient", "The Patient itself, by reference (Patient/<id>): the same as _id"),
    ("Provenance", "scan-patient"): OwnParameter(
        "Provenance.target.where(resolve() is ImagingStudy).resolve().subject",
        "The Patient whose scan the recorded workflow step changed (R4's `patient` asks for "
        "a target that is the Patient itself)"),
    ("Provenance", "subject"): OwnParameter(
        "Provenance.target.where(resolve() is ImagingStudy).resolve().subject",
        "The same as scan-patient: the Patient whose scan the recorded step changed"),
    ("AuditEvent", "subject"): OwnParameter(
        "AuditEvent.entity.what.where(resolve() is Patient)",
        "The Patient whose data the recorded access read or changed"),
}


def standard_definition(resource_type: str, name: str) -> str | None:
    """The canonical URL of the R4 SearchParameter that `name` on `resource_type`
    implements; None for our own (`OWN_PARAMETERS`)."""
    if (resource_type, name) in OWN_PARAMETERS:
        return None
    if name in ("_id", "_lastUpdated"):
        return f"{R4_SEARCH_PARAMETER}Resource-{name.removeprefix('_')}"
    if name == "patient" and resource_type in _CLINICAL_PATIENT:
        return f"{R4_SEARCH_PARAMETER}clinical-patient"
    if name == "patient" and resource_type == "Task":
        return f"{R4_SEARCH_PARAMETER}Task-patient"
    if name == "subject" and resource_type in _R4_SUBJECT:
        return f"{R4_SEARCH_PARAMETER}{resource_type}-subject"
    return R4_SEARCH_PARAMETER + _STANDARD[(resource_type, name)]
