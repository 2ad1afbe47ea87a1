"""QIDO-RS matching (PS3.18 10.6) and the WADO-RS lookups, over the scans a caller may read.

Scans that arrived as DICOM are served here, and beside them the DICOM results of released
reports (`DicomResult`: the AI's SR and Grad-CAM image, `csss_fhir.dicom_results`) in the
scan's own study. A JPEG or PNG upload has no DICOM instance to retrieve, but its study is
listed once a result is filed in it. A patient sees only their own scans; anything else is
"not found".

Matching follows PS3.4 C.2.2.2: UID lists (comma-separated or repeated), `*`/`?` wildcards on
PatientID, and date ranges (`YYYYMMDD`, `YYYYMMDD-YYYYMMDD`, open at either end). StudyDate is
matched on the study's start converted to UTC, which is how it is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.models import DicomResult, Patient, Scan
from csss_fhir.security import access
from csss_fhir.security.actor import Actor

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_DATE = re.compile(r"\d{8}")

# Query keys by keyword and by tag (PS3.18 8.3.4: either form), per level.
STUDY_KEYS = {"StudyInstanceUID": "0020000D", "PatientID": "00100020",
              "StudyDate": "00080020", "ModalitiesInStudy": "00080061"}
SERIES_KEYS = {"SeriesInstanceUID": "0020000E", "Modality": "00080060"}
INSTANCE_KEYS = {"SOPInstanceUID": "00080018", "SOPClassUID": "00080016"}
CONTROL_KEYS = frozenset({"limit", "offset", "includefield", "fuzzymatching"})


@dataclass(frozen=True)
class Query:
    """What a QIDO-RS request matches on, after parsing."""

    matches: dict[str, list[str]]
    limit: int
    offset: int
    include: tuple[str, ...]


def parse_query(args: list[tuple[str, str]], *, level: str) -> Query:
    """Parse QIDO-RS query parameters for `level` (study, series or instance).

    Raises:
        InvalidInputError: an attribute that cannot be matched at this level, or a bad
            limit, offset or date.
    """
    keys = dict(STUDY_KEYS)
    if level in ("series", "instance"):
        keys |= SERIES_KEYS
    if level == "instance":
        keys |= INSTANCE_KEYS
    by_tag = {tag: keyword for keyword, tag in keys.items()}
    matches: dict[str, list[str]] = {}
    include: list[str] = []
    limit, offset = DEFAULT_LIMIT, 0
    for name, value in args:
        if name == "includefield":
            include += [v.strip() for v in value.split(",") if v.strip()]
        elif name == "limit":
            limit = _count(name, value, 1, MAX_LIMIT)
        elif name == "offset":
            offset = _count(name, value, 0, 10**9)
        elif name in CONTROL_KEYS:
            continue  # fuzzymatching: we match exactly, as PS3.18 allows
        elif name in keys or name.upper() in by_tag:
            keyword = name if name in keys else by_tag[name.upper()]
            matches.setdefault(keyword, []).extend(
                v.strip() for v in value.split(",") if v.strip())
        else:
            raise InvalidInputError(
                f"{name!r} cannot be matched on at the {level} level; use "
                f"{', '.join(sorted(keys))} (keyword or tag), limit, offset or includefield")
    if "StudyDate" in matches:
        for value in matches["StudyDate"]:
            _date_range(value)
    return Query(matches=matches, limit=limit, offset=offset, include=tuple(include))


def _count(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidInputError(f"{name}={value!r}; expected a whole number from {low} to "
                                f"{high}")
    return int(value)


def _date_range(value: str) -> tuple[datetime | None, datetime | None]:
    """[start, end) in UTC for a DA value or range."""
    low, dash, high = value.partition("-")
    bounds = (low, high) if dash else (value, value)
    if not any(bounds) or not all(_DATE.fullmatch(b) for b in bounds if b):
        raise InvalidInputError(
            f"StudyDate={value!r}; expected YYYYMMDD, YYYYMMDD-YYYYMMDD, YYYYMMDD- or "
            "-YYYYMMDD")
    try:
        days = [datetime.strptime(b, "%Y%m%d").date() if b else None for b in bounds]
    except ValueError as err:
        raise InvalidInputError(f"StudyDate={value!r} is not a calendar date") from err
    start = _midnight(days[0]) if days[0] else None
    end = _midnight(days[1] + timedelta(days=1)) if days[1] else None
    return start, end


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _readable(actor: Actor, statement: Select) -> Select:
    access.require_read(actor, "ImagingStudy")
    statement = statement.join(Patient, Patient.id == Scan.patient_id)
    compartment = access.compartment(actor)
    if compartment is not None:
        statement = statement.where(Scan.patient_id == compartment)
    return statement


def _visible(actor: Actor) -> Select:
    """The scans stored as DICOM instances."""
    return _readable(actor, select(Scan)).where(Scan.source_format == "dicom")


def _studies(actor: Actor) -> Select:
    """The studies with a DICOM instance: a DICOM scan, or a filed AI result."""
    return _readable(actor, select(Scan)).where(or_(
        Scan.source_format == "dicom", Scan.id.in_(select(DicomResult.scan_id))))


def _derived(actor: Actor) -> Select:
    """The DICOM results filed in the scans' studies."""
    return _readable(actor, select(DicomResult).join(Scan, Scan.id == DicomResult.scan_id))


def _wildcard(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _matching(statement: Select, matches: dict[str, list[str]],
              instance: type[Scan] | type[DicomResult] = Scan) -> Select:
    """`matches` on study attributes of the scan, series and instance ones of `instance`."""
    uid_columns = {"StudyInstanceUID": Scan.study_uid, "SeriesInstanceUID": instance.series_uid,
                   "SOPInstanceUID": instance.instance_uid,
                   "SOPClassUID": instance.sop_class_uid}
    for keyword, values in matches.items():
        if keyword in uid_columns:
            statement = statement.where(uid_columns[keyword].in_(values))
        elif keyword in ("ModalitiesInStudy", "Modality"):
            column = Scan.modality if keyword == "ModalitiesInStudy" else instance.modality
            statement = statement.where(column.in_([v.upper() for v in values]))
        elif keyword == "PatientID":
            value = values[0]
            statement = statement.where(
                Patient.mrn.like(_wildcard(value), escape="\\") if set("*?") & set(value)
                else Patient.mrn == value)
        elif keyword == "StudyDate":
            start, end = _date_range(values[0])
            if start is not None:
                statement = statement.where(Scan.started >= start)
            if end is not None:
                statement = statement.where(Scan.started < end)
    return statement


def search(session: Session, actor: Actor, query: Query, *, level: str = "study",
           study_uid: str | None = None, series_uid: str | None = None
           ) -> tuple[list[Scan | DicomResult], int]:
    """The scans (and, below the study level, the filed DICOM results) matching `query`:
    one page, and how many match in all.

    Raises:
        AccessDeniedError: the actor may not read ImagingStudy.
    """
    if level == "study":
        statements = [_matching(_studies(actor), query.matches)]
    else:
        statements = [_matching(_visible(actor), query.matches),
                      _matching(_derived(actor), query.matches, DicomResult)]
    rows: list[Scan | DicomResult] = []
    total, offset = 0, query.offset
    for statement, instance in zip(statements, (Scan, DicomResult), strict=False):
        if study_uid is not None:
            statement = statement.where(Scan.study_uid == study_uid)
        if series_uid is not None:
            statement = statement.where(instance.series_uid == series_uid)
        count = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
        total += count
        wanted = query.limit - len(rows)
        if wanted > 0 and offset < count:
            rows += session.scalars(statement.order_by(instance.created_at, instance.id)
                                    .limit(wanted).offset(offset))
        offset = max(0, offset - count)
    return rows, total


def derived_in(session: Session, scans: list[Scan]) -> dict[str, list[DicomResult]]:
    """The DICOM results filed in each scan's study, by scan id (for study attributes)."""
    found: dict[str, list[DicomResult]] = {}
    if scans:
        for row in session.scalars(select(DicomResult).where(
                DicomResult.scan_id.in_([s.id for s in scans]))):
            found.setdefault(row.scan_id, []).append(row)
    return found


def find(session: Session, actor: Actor, study_uid: str, series_uid: str | None = None,
         instance_uid: str | None = None) -> list[Scan | DicomResult]:
    """The instances under a WADO-RS URL — a study, a series of it, or one instance: the
    scan stored as DICOM and the results filed in its study.

    Raises:
        ResourceNotFoundError: none the actor may read (a patient asking for another
            patient's study learns nothing more).
    """
    found: list[Scan | DicomResult] = []
    for statement, instance in ((_visible(actor), Scan), (_derived(actor), DicomResult)):
        statement = statement.where(Scan.study_uid == study_uid)
        if series_uid is not None:
            statement = statement.where(instance.series_uid == series_uid)
        if instance_uid is not None:
            statement = statement.where(instance.instance_uid == instance_uid)
        found += session.scalars(statement.order_by(instance.created_at, instance.id))
    if not found:
        path = "/".join(p for p in (study_uid, series_uid, instance_uid) if p)
        raise ResourceNotFoundError(f"no DICOM instance stored under {path}")
    return found
