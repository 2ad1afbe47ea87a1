"""FHIR search over the domain tables: parameters -> SQL filters, paging, sorting, _include,
_revinclude and _summary=count.

`PARAMETERS` is the single source of what is searchable: the CapabilityStatement is generated
from it. Each parameter is a `Param` carrying its FHIR type (token, date, string, reference)
and the modifiers it supports; a plain `(model, value) -> clause` callable also works and is
treated as a token without modifiers. The FHIR value rules are applied here, once:

- a comma inside one value is OR (`status=final,preliminary`), a repeated parameter is AND;
- token `[system]|[code]`, `|code` (no system) and `code` (any system); `:not` negates;
- date `eq ne gt lt ge le sa eb` on `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a dateTime, each an
  implicit range;
- string: case-insensitive "starts with" by default, `:exact` (case-sensitive equality) and
  `:contains`;
- reference: `id`, `Type/id` or an absolute URL ending so; `:Type` names the target type.

Every query passes through the caller's compartment (security/access.py), and included rows
are filtered by the caller's read rights too, so a patient's search can only ever return
that patient's rows of the types a patient may read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, func, not_, or_, select, true
from sqlalchemy.orm import Session

from adapters.fhir.common import (
    DICOM_UID,
    OBSERVATION_CATEGORY,
    finding_labels_for_code,
    observation_code_matches,
)
from adapters.fhir.task import TASK_STATUS
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.models import AiPrediction, DoctorReview, Report, Scan, User, WorkflowEvent
from csss_fhir.resources import SERVED, type_of

DEFAULT_COUNT = 20
MAX_COUNT = 100
SORTS = ("_lastUpdated", "-_lastUpdated")
CONTROL = frozenset({"_count", "_offset", "_sort", "_include", "_revinclude", "_format",
                     "_summary"})
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")

Filter = Callable[..., ColumnElement[bool]]


@dataclass(frozen=True)
class Param:
    """A search parameter: its FHIR type, its clause builder and its modifiers."""

    type: str  # token | date | string | reference
    clause: Callable[[type, str, str | None], ColumnElement[bool]]
    modifiers: frozenset[str] = frozenset()

    def __call__(self, model: type, value: str, modifier: str | None = None
                 ) -> ColumnElement[bool]:
        return self.clause(model, value, modifier)


def param_type(parameter: Any) -> str:
    return parameter.type if isinstance(parameter, Param) else "token"


# --- value parsers (FHIR search parameter types) -----------------------------------------

def _split_or(value: str) -> list[str]:
    """Split on commas that are not escaped with a backslash (FHIR's OR)."""
    parts = re.split(r"(?<!\\),", value)
    return [p.replace("\\,", ",") for p in parts if p != ""]


def _reference_id(value: str, expected_type: str, modifier: str | None = None) -> str:
    if modifier and modifier != expected_type:
        raise InvalidInputError(f"expected a reference to {expected_type}, got :{modifier}")
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != expected_type:
        raise InvalidInputError(f"expected a reference to {expected_type}, got {value!r}")
    return parts[-1]


def _range(value: str) -> tuple[str, datetime, datetime, bool]:
    """(prefix, start, end, date_only) of a FHIR date search value."""
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            return prefix, start, start + timedelta(days=1), True
        if re.fullmatch(r"\d{4}-\d{2}", text):
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            return prefix, start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC), \
                True
        if re.fullmatch(r"\d{4}", text):
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return prefix, start, datetime(int(text) + 1, 1, 1, tzinfo=UTC), True
        if "T" not in text:
            raise ValueError(text)
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        precision = timedelta(seconds=1) if start.microsecond == 0 else timedelta(microseconds=1)
        return prefix, start, start + precision, False
    except ValueError as err:
        raise InvalidInputError(
            f"{value!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with a "
            f"time zone), optionally prefixed {'/'.join(DATE_PREFIXES)}") from err


def _date_clause(column: Any, value: str, *, date_column: bool = False) -> ColumnElement[bool]:
    """FHIR date search: the value is a range [start, end); the prefix compares ranges."""
    prefix, start, end, _ = _range(value)
    low: Any = start.date() if date_column else start
    high: Any = (end - timedelta(microseconds=1)).date() if date_column else end
    if date_column:  # a Date column holds whole days: compare inclusively
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


def _token(value: str) -> tuple[str | None, str]:
    """(system, code); system None: any system, "" : no system (`|code`)."""
    if "|" in value:
        system, _, code = value.partition("|")
        return system, code
    return None, value


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _string_clause(columns: list[Any], value: str, modifier: str | None
                   ) -> ColumnElement[bool]:
    """FHIR string search over several columns (any may match)."""
    if modifier == "exact":
        return or_(*[column == value for column in columns])
    needle = _like_escape(value.lower())
    if modifier == "contains":
        return or_(*[func.lower(c).like(f"%{needle}%", escape="\\") for c in columns])
    # Default: starts with, at the start of the element or of any word in it.
    return or_(*[or_(func.lower(c).like(f"{needle}%", escape="\\"),
                     func.lower(c).like(f"% {needle}%", escape="\\")) for c in columns])


def token(clause: Callable[[type, str | None, str], ColumnElement[bool]]) -> Param:
    """A token parameter from `clause(model, system, code)`; supports `:not`."""
    def build(model: type, value: str, modifier: str | None) -> ColumnElement[bool]:
        system, code = _token(value)
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
    return Param("date", lambda m, v, _: _date_clause(getattr(m, attribute), v,
                                                       date_column=date_column))


def string_param(*attributes: str) -> Param:
    return Param("string", lambda m, v, mod: _string_clause(
        [getattr(m, a) for a in attributes], v, mod), frozenset({"exact", "contains"}))


def reference_param(attribute: str, target: str) -> Param:
    return Param("reference", lambda m, v, mod: getattr(m, attribute) == _reference_id(
        v, target, mod), frozenset({target}))


# --- per-type parameters ------------------------------------------------------------------

def _common(patient_attr: str | None) -> dict[str, Filter]:
    filters: dict[str, Filter] = {
        "_id": token(lambda m, s, code: m.id == code),
        "_lastUpdated": date_param("updated_at"),
    }
    if patient_attr:
        filters["patient"] = reference_param(patient_attr, "Patient")
        filters["subject"] = reference_param(patient_attr, "Patient")
    return filters


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
    parts = value.rstrip("/").split("/")
    kind = modifier or (parts[-2] if len(parts) >= 2 else None)
    if m is DoctorReview and kind in (None, "Observation"):
        clause = m.prediction_id == parts[-1]
        return or_(clause, m.scan_id == parts[-1]) if kind is None else clause
    if kind in (None, "ImagingStudy"):
        return m.scan_id == parts[-1]
    return false()


def _provenance_target(m: type, value: str, modifier: str | None) -> ColumnElement[bool]:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2:
        reference = f"{parts[-2]}/{parts[-1]}"
        if parts[-2] == "ImagingStudy":
            return m.scan_id == parts[-1]
        return cast(m.targets, String).like(f'%"{_like_escape(reference)}"%', escape="\\")
    return or_(m.scan_id == parts[-1],
               cast(m.targets, String).like(f'%/{_like_escape(parts[-1])}"%', escape="\\"))


def _agent_clause(m: type, value: str) -> ColumnElement[bool]:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2:
        return m.agent_reference == f"{parts[-2]}/{parts[-1]}"
    return m.agent_reference.like(f"%/{_like_escape(parts[-1])}", escape="\\")


PARAMETERS: dict[str, dict[str, Filter]] = {
    "Patient": {
        **_common("id"),
        "identifier": token(_patient_identifier),
        "name": string_param("family_name", "given_names"),
        "family": string_param("family_name"),
        "given": string_param("given_names"),
        "birthdate": date_param("birth_date", date_column=True),
        "email": token(lambda m, s, code: func.lower(m.email) == code.lower()),
        "active": token(lambda m, s, code: m.active == (code == "true")),
    },
    "Practitioner": {**_common(None),
                     "name": string_param("name"),
                     "email": token(lambda m, s, code: func.lower(m.email) == code.lower())},
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
                   "agent": Param("reference", lambda m, v, mod: _agent_clause(m, v)),
                   "date": date_param("recorded")},
}

# _include / _revinclude: what each names, and how to find the rows (see _includes).
INCLUDES: dict[str, tuple[str, ...]] = {
    "DiagnosticReport": ("DiagnosticReport:result",),
    "Observation": ("Observation:derived-from",),
    "ImagingStudy": ("ImagingStudy:patient",),
}
REVINCLUDES: dict[str, tuple[str, ...]] = {
    "Patient": ("ImagingStudy:patient",),
    "ImagingStudy": ("Observation:derived-from", "Provenance:target"),
    "Observation": ("DiagnosticReport:result", "Observation:derived-from", "Provenance:target"),
    "DiagnosticReport": ("Provenance:target",),
    "Task": ("Provenance:target",),
}


def parameter_types() -> dict[str, dict[str, str]]:
    """{type: {parameter: FHIR search type}} for the CapabilityStatement."""
    return {resource_type: {name: param_type(p) for name, p in sorted(params.items())}
            for resource_type, params in PARAMETERS.items()}


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    compartment: str | None  # restrict to this Patient id
    strict: bool = False
    may_read: Callable[[str], bool] | None = None  # which types the caller may read


@dataclass
class SearchResult:
    rows: list[Any]
    total: int
    count: int
    offset: int
    included: list[Any] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    summary_count: bool = False  # _summary=count: the total only


def _compartment_clause(resource_type: str, model: type, patient_id: str
                        ) -> ColumnElement[bool]:
    column = SERVED[resource_type].patient_column
    if column is None:  # not patient data (staff directory, devices): no restriction
        return true()
    return getattr(model, column) == patient_id


def _base(resource_type: str, model: type) -> Any:
    query = select(model)
    if model is User:
        query = query.where(User.role != "patient")
    return query


def _clause(parameter: Any, model: type, value: str, modifier: str | None
            ) -> ColumnElement[bool]:
    negate = modifier == "not" and param_type(parameter) == "token"
    passed = None if negate else modifier
    values = _split_or(value)
    if isinstance(parameter, Param):
        clauses = [parameter(model, v, passed) for v in values]
    else:
        clauses = [parameter(model, v) for v in values]
    clause = or_(*clauses) if len(clauses) > 1 else clauses[0]
    return not_(clause) if negate else clause


def _supports(parameter: Any, modifier: str | None) -> bool:
    if modifier is None:
        return True
    return isinstance(parameter, Param) and modifier in parameter.modifiers


def search(session: Session, request: SearchRequest) -> SearchResult:
    """Run a FHIR search; unknown parameters are ignored (strict: refused)."""
    if request.resource_type not in PARAMETERS:
        raise ResourceNotFoundError(f"{request.resource_type} is not searchable here")
    known = PARAMETERS[request.resource_type]
    count, offset, sort_desc, summary_count = DEFAULT_COUNT, 0, True, False
    includes: list[str] = []
    revincludes: list[str] = []
    clauses: dict[type, list[ColumnElement[bool]]] = {
        m: [] for m in SERVED[request.resource_type].models
    }
    ignored: list[str] = []

    def refuse(label: str, reason: str) -> None:
        if request.strict:
            raise InvalidInputError(reason)
        ignored.append(label)

    for name, value in request.params:
        base_name, _, modifier = name.partition(":")
        if name == "_count":
            count = _int_param(name, value, minimum=0, maximum=MAX_COUNT)
        elif name == "_offset":
            offset = _int_param(name, value, minimum=0, maximum=10**9)
        elif name == "_sort":
            if value not in SORTS:
                refuse(f"_sort={value}", f"_sort supports {' and '.join(SORTS)}")
            else:
                sort_desc = value.startswith("-")
        elif base_name == "_include":
            includes.append(value)
        elif base_name == "_revinclude":
            revincludes.append(value)
        elif name == "_summary":
            if value == "count":
                summary_count = True
            elif value != "false":
                refuse(f"_summary={value}", "_summary supports count and false")
        elif name == "_format":
            continue
        elif base_name in known and value != "":
            parameter = known[base_name]
            if not _supports(parameter, modifier or None) and not (
                    modifier == "not" and param_type(parameter) == "token"):
                refuse(name, f"the modifier :{modifier} is not supported on {base_name}")
                continue
            for model in clauses:
                clauses[model].append(_clause(parameter, model, value, modifier or None))
        else:
            refuse(name, f"unknown search parameter {name!r} for {request.resource_type}")

    if request.compartment is not None:
        for model in clauses:
            clauses[model].append(
                _compartment_clause(request.resource_type, model, request.compartment))

    rows: list[Any] = []
    total = 0
    for model, where in clauses.items():
        query = _base(request.resource_type, model).where(*where)
        total += session.scalar(select(func.count()).select_from(query.subquery()))
        if summary_count:
            continue
        order = model.updated_at.desc() if sort_desc else model.updated_at.asc()
        rows.extend(session.scalars(query.order_by(order, model.id).limit(offset + count)))
    rows.sort(key=lambda r: (r.updated_at, r.id), reverse=sort_desc)
    rows = rows[offset:offset + count]
    included = _includes(session, request, rows, includes, revincludes, ignored)
    return SearchResult(rows=rows, total=total, count=count, offset=offset, included=included,
                        ignored=ignored, summary_count=summary_count)


def _int_param(name: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError as err:
        raise InvalidInputError(f"{name} must be a whole number") from err
    if number < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum}")
    return min(number, maximum)


def _named(value: str) -> str:
    """`Type:param[:Target]` -> `Type:param` (the target type is implied here)."""
    return ":".join(value.split(":")[:2])


def _forward(session: Session, name: str, rows: list[Any]) -> list[Any]:
    found: list[Any] = []
    if name == "DiagnosticReport:result":
        for report in rows:
            found += [r for r in (report.scan.prediction, report.scan.review) if r is not None]
    elif name == "Observation:derived-from":
        for row in rows:
            if isinstance(row, DoctorReview):
                found.append(row.prediction)
            found.append(row.scan)
    elif name == "ImagingStudy:patient":
        found += [row.patient for row in rows]
    return found


def _reverse(session: Session, name: str, resource_type: str, rows: list[Any]) -> list[Any]:
    ids = [row.id for row in rows]
    if not ids:
        return []
    if name == "ImagingStudy:patient":
        return list(session.scalars(select(Scan).where(Scan.patient_id.in_(ids))))
    if name == "DiagnosticReport:result":
        scan_ids = {row.scan_id for row in rows}
        return list(session.scalars(select(Report).where(Report.scan_id.in_(scan_ids))))
    if name == "Observation:derived-from":
        if resource_type == "ImagingStudy":
            return [*session.scalars(select(AiPrediction).where(AiPrediction.scan_id.in_(ids))),
                    *session.scalars(select(DoctorReview).where(DoctorReview.scan_id.in_(ids)))]
        return list(session.scalars(select(DoctorReview).where(
            DoctorReview.prediction_id.in_(ids))))
    if name == "Provenance:target":
        wanted = {f"{type_of(row)}/{row.id}" for row in rows}
        scan_ids = {row.id if isinstance(row, Scan) else row.scan_id for row in rows}
        events = session.scalars(select(WorkflowEvent).where(WorkflowEvent.scan_id.in_(scan_ids)))
        return [e for e in events if wanted & set(e.targets)]
    return []


def _includes(session: Session, request: SearchRequest, rows: list[Any], includes: list[str],
              revincludes: list[str], ignored: list[str]) -> list[Any]:
    found: list[Any] = []
    for kind, values, supported in (
            ("_include", includes, INCLUDES.get(request.resource_type, ())),
            ("_revinclude", revincludes, REVINCLUDES.get(request.resource_type, ()))):
        for value in values:
            name = _named(value)
            if name not in supported:
                if request.strict:
                    raise InvalidInputError(
                        f"{kind}={value} is not supported on {request.resource_type}; "
                        f"supported: {', '.join(supported) or 'none'}")
                ignored.append(f"{kind}={value}")
                continue
            found += _forward(session, name, rows) if kind == "_include" else \
                _reverse(session, name, request.resource_type, rows)
    matched = {(type(r).__name__, r.id) for r in rows}
    unique: dict[tuple[str, str], Any] = {}
    for row in found:
        key = (type(row).__name__, row.id)
        if row is None or key in matched or not _visible(request, row):
            continue
        unique[key] = row
    return list(unique.values())


def _visible(request: SearchRequest, row: Any) -> bool:
    """May the caller see this included row? (type rights and compartment)"""
    resource_type = type_of(row)
    if request.may_read is not None and not request.may_read(resource_type):
        return False
    if request.compartment is None:
        return True
    column = SERVED[resource_type].patient_column
    return column is None or getattr(row, column) == request.compartment


def find(session: Session, resource_type: str, resource_id: str, compartment: str | None
         ) -> Any:
    """Read one row by FHIR type and id within the compartment.

    Raises:
        ResourceNotFoundError: unknown type or id, or outside the caller's compartment.
    """
    served = SERVED.get(resource_type)
    if served is None:
        raise ResourceNotFoundError(f"{resource_type} is not a resource type served here")
    for model in served.models:
        row = session.get(model, resource_id)
        if row is None:
            continue
        if model is User and row.role == "patient":
            continue
        if compartment is not None:
            column = served.patient_column
            if column is not None and getattr(row, column) != compartment:
                continue
            if column is None and resource_type not in ("Practitioner", "PractitionerRole",
                                                        "Device"):
                continue
        return row
    raise ResourceNotFoundError(f"{resource_type}/{resource_id} does not exist")


__all__ = ["CONTROL", "DEFAULT_COUNT", "INCLUDES", "MAX_COUNT", "PARAMETERS", "Param",
           "REVINCLUDES", "SearchRequest", "SearchResult", "find", "parameter_types", "search"]
