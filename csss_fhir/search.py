"""FHIR search over the domain tables: parameters -> SQL filters, paging, sorting, _include.

Every query passes through the caller's compartment (security/access.py), so a patient's
search can only ever match that patient's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

from adapters.fhir.task import TASK_STATUS
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.models import DoctorReview, User
from csss_fhir.resources import SERVED

DEFAULT_COUNT = 20
MAX_COUNT = 100
CONTROL = frozenset({"_count", "_offset", "_sort", "_include", "_format", "_summary"})

Filter = Callable[[type, str], ColumnElement[bool]]


# --- value parsers (FHIR search parameter types) -----------------------------------------

def _reference_id(value: str, expected_type: str) -> str:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] != expected_type:
        raise InvalidInputError(f"expected a reference to {expected_type}, got {value!r}")
    return parts[-1]


def _date_clause(column: Any, value: str) -> ColumnElement[bool]:
    """FHIR date search: prefix (eq, ne, gt, lt, ge, le) + a date or dateTime, as a range."""
    prefix = value[:2] if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le") else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        if len(text) == 10:
            start = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            end = start + timedelta(days=1)
        elif len(text) == 7:
            year, month = int(text[:4]), int(text[5:7])
            start = datetime(year, month, 1, tzinfo=UTC)
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
        elif len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            end = datetime(int(text) + 1, 1, 1, tzinfo=UTC)
        else:
            start = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
            end = start + timedelta(seconds=1)
    except ValueError as err:
        raise InvalidInputError(f"{value!r} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or "
                                "a dateTime, optionally prefixed ge/le/gt/lt/eq/ne)") from err
    return {
        "eq": and_(column >= start, column < end),
        "ne": or_(column < start, column >= end),
        "gt": column >= end,
        "ge": column >= start,
        "lt": column < start,
        "le": column < end,
    }[prefix]


def _birthdate_clause(column: Any, value: str) -> ColumnElement[bool]:
    prefix = value[:2] if value[:2] in ("eq", "ne", "gt", "lt", "ge", "le") else "eq"
    text = value[2:] if value[:2] == prefix else value
    try:
        day = date.fromisoformat(text)
    except ValueError as err:
        raise InvalidInputError(f"birthdate {value!r} must be YYYY-MM-DD") from err
    return {"eq": column == day, "ne": column != day, "gt": column > day, "ge": column >= day,
            "lt": column < day, "le": column <= day}[prefix]


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, _, code = value.partition("|")
        return system or None, code
    return None, value


# --- per-type parameters ------------------------------------------------------------------

def _common(patient_attr: str | None) -> dict[str, Filter]:
    filters: dict[str, Filter] = {
        "_id": lambda m, v: m.id.in_(v.split(",")),
        "_lastUpdated": lambda m, v: _date_clause(m.updated_at, v),
    }
    if patient_attr:
        def by_patient(m: type, v: str) -> ColumnElement[bool]:
            return getattr(m, patient_attr).in_(
                [_reference_id(x, "Patient") for x in v.split(",")])
        filters["patient"] = by_patient
        filters["subject"] = by_patient
    return filters


def _task_status(m: type, v: str) -> ColumnElement[bool]:
    states = [s for s, status in TASK_STATUS.items() if status in v.split(",")]
    return m.state.in_(states) if states else false()


def _observation_status(m: type, v: str) -> ColumnElement[bool]:
    return m.status.in_(v.split(","))


def _patient_identifier(m: type, v: str) -> ColumnElement[bool]:
    system, code = _token(v)
    clause = m.mrn == code
    return and_(clause, m.mrn_system == system) if system else clause


def _patient_name(m: type, v: str) -> ColumnElement[bool]:
    needle = f"%{v.lower()}%"
    return or_(func.lower(m.family_name).like(needle), func.lower(m.given_names).like(needle))


def _study_identifier(m: type, v: str) -> ColumnElement[bool]:
    _, code = _token(v)
    return m.study_uid == code.removeprefix("urn:oid:")


def _observation_code(m: type, v: str) -> ColumnElement[bool]:
    _, code = _token(v)
    return true_if(code in ("121071",))


def true_if(condition: bool) -> ColumnElement[bool]:
    return true() if condition else false()


def _derived_from(m: type, v: str) -> ColumnElement[bool]:
    parts = v.split("/")
    if m is DoctorReview and (len(parts) == 1 or parts[-2] == "Observation"):
        return or_(m.prediction_id == parts[-1], m.scan_id == parts[-1])
    if len(parts) == 1 or parts[-2] == "ImagingStudy":
        return m.scan_id == parts[-1]
    return false()


PARAMETERS: dict[str, dict[str, Filter]] = {
    "Patient": {
        **_common("id"),
        "identifier": _patient_identifier,
        "name": _patient_name,
        "birthdate": lambda m, v: _birthdate_clause(m.birth_date, v),
        "email": lambda m, v: func.lower(m.email) == v.lower(),
        "active": lambda m, v: m.active == (v == "true"),
    },
    "Practitioner": {**_common(None),
                     "name": lambda m, v: func.lower(m.name).like(f"%{v.lower()}%"),
                     "email": lambda m, v: func.lower(m.email) == v.lower()},
    "PractitionerRole": {**_common(None),
                         "role": lambda m, v: m.role == v},
    "ImagingStudy": {**_common("patient_id"),
                     "status": lambda m, v: m.status.in_(v.split(",")),
                     "identifier": _study_identifier,
                     "started": lambda m, v: _date_clause(m.started, v)},
    "Task": {**_common("patient_id"),
             "status": _task_status,
             "focus": lambda m, v: m.scan_id == _reference_id(v, "ImagingStudy"),
             "business-status": lambda m, v: m.state.in_(
                 [_token(x)[1] for x in v.split(",")])},
    "Observation": {**_common("patient_id"),
                    "status": _observation_status,
                    "category": lambda m, v: true_if(_token(v)[1] == "imaging"),
                    "code": _observation_code,
                    "derived-from": _derived_from},
    "MedicationRequest": {**_common("patient_id"),
                          "status": lambda m, v: m.status.in_(v.split(",")),
                          "authoredon": lambda m, v: _date_clause(m.authored_on, v)},
    "DiagnosticReport": {**_common("patient_id"),
                         "status": lambda m, v: m.status.in_(v.split(",")),
                         "issued": lambda m, v: _date_clause(m.issued, v)},
    "Provenance": {**_common("patient_id"),
                   "target": lambda m, v: m.scan_id == v.split("/")[-1]},
    "Device": {**_common(None)},
}


@dataclass(frozen=True)
class SearchRequest:
    resource_type: str
    params: list[tuple[str, str]]
    compartment: str | None  # restrict to this Patient id
    strict: bool = False


@dataclass
class SearchResult:
    rows: list[Any]
    total: int
    count: int
    offset: int
    included: list[Any] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


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


def search(session: Session, request: SearchRequest) -> SearchResult:
    """Run a FHIR search; unknown parameters are ignored (strict: refused)."""
    if request.resource_type not in PARAMETERS:
        raise ResourceNotFoundError(f"{request.resource_type} is not searchable here")
    known = PARAMETERS[request.resource_type]
    count, offset, sort_desc = DEFAULT_COUNT, 0, True
    includes: list[str] = []
    clauses: dict[type, list[ColumnElement[bool]]] = {
        m: [] for m in SERVED[request.resource_type].models
    }
    ignored: list[str] = []
    for name, value in request.params:
        base_name = name.split(":")[0]
        if name == "_count":
            count = _int_param(name, value, minimum=0, maximum=MAX_COUNT)
        elif name == "_offset":
            offset = _int_param(name, value, minimum=0, maximum=10**9)
        elif name == "_sort":
            if value not in ("_lastUpdated", "-_lastUpdated"):
                if request.strict:
                    raise InvalidInputError("_sort supports _lastUpdated and -_lastUpdated")
                ignored.append(f"_sort={value}")
            sort_desc = value.startswith("-")
        elif name == "_include":
            includes.append(value)
        elif name in ("_format",):
            continue
        elif base_name in known and value != "":
            for model in clauses:
                clauses[model].append(known[base_name](model, value))
        else:
            if request.strict:
                raise InvalidInputError(f"unknown search parameter {name!r} for "
                                        f"{request.resource_type}")
            ignored.append(name)

    if request.compartment is not None:
        for model in clauses:
            clauses[model].append(
                _compartment_clause(request.resource_type, model, request.compartment))

    rows: list[Any] = []
    total = 0
    for model, where in clauses.items():
        query = _base(request.resource_type, model).where(*where)
        total += session.scalar(select(func.count()).select_from(query.subquery()))
        order = model.updated_at.desc() if sort_desc else model.updated_at.asc()
        rows.extend(session.scalars(query.order_by(order, model.id).limit(offset + count)))
    rows.sort(key=lambda r: (r.updated_at, r.id), reverse=sort_desc)
    rows = rows[offset:offset + count]
    included = _includes(session, request.resource_type, rows, includes, ignored,
                         request.strict)
    return SearchResult(rows=rows, total=total, count=count, offset=offset, included=included,
                        ignored=ignored)


def _int_param(name: str, value: str, *, minimum: int, maximum: int) -> int:
    try:
        number = int(value)
    except ValueError as err:
        raise InvalidInputError(f"{name} must be a whole number") from err
    if number < minimum:
        raise InvalidInputError(f"{name} must be at least {minimum}")
    return min(number, maximum)


def _includes(session: Session, resource_type: str, rows: Iterable[Any],
              includes: list[str], ignored: list[str], strict: bool) -> list[Any]:
    found: list[Any] = []
    for value in includes:
        if value == "DiagnosticReport:result" and resource_type == "DiagnosticReport":
            for report in rows:
                scan = report.scan
                found += [r for r in (scan.prediction, scan.review) if r is not None]
        elif value == "Observation:derived-from" and resource_type == "Observation":
            for row in rows:
                if isinstance(row, DoctorReview):
                    found.append(row.prediction)
        elif value == "ImagingStudy:patient" and resource_type == "ImagingStudy":
            found += [row.patient for row in rows]
        else:
            if strict:
                raise InvalidInputError(f"_include={value} is not supported")
            ignored.append(f"_include={value}")
    unique: dict[tuple[str, str], Any] = {}
    for row in found:
        unique[(type(row).__name__, row.id)] = row
    return list(unique.values())


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

