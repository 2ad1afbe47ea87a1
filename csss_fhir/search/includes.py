"""`_include` and `_revinclude`: the rows a search result references, or that reference it.

`INCLUDES` and `REVINCLUDES` say what each searched type supports (the CapabilityStatement
lists them); `FORWARD` and `REVERSE` say how to find the rows for each name. Every row found
passes the caller's `Viewer`, so an include never shows what a plain search would hide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from csss_fhir.models import AiPrediction, DoctorReview, Report, Scan, WorkflowEvent
from csss_fhir.resources import type_of
from csss_fhir.search.visibility import Viewer

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


# --- _include: follow a reference out of each matched row ---------------------------------

def _report_results(rows: list[Any]) -> list[Any]:
    return [result for report in rows
            for result in (report.scan.prediction, report.scan.review)]


def _derived_sources(rows: list[Any]) -> list[Any]:
    """The AI Observation a doctor's derives from, and every Observation's ImagingStudy."""
    found: list[Any] = []
    for row in rows:
        if isinstance(row, DoctorReview):
            found.append(row.prediction)
        # A DoctorReview has no `scan` relationship: load the study by its id.
        found.append(object_session(row).get(Scan, row.scan_id))
    return found


def _study_patients(rows: list[Any]) -> list[Any]:
    return [study.patient for study in rows]


FORWARD: dict[str, Callable[[list[Any]], list[Any]]] = {
    "DiagnosticReport:result": _report_results,
    "Observation:derived-from": _derived_sources,
    "ImagingStudy:patient": _study_patients,
}


# --- _revinclude: find the rows whose reference points at a matched row --------------------

def _studies_of_patients(session: Session, rows: list[Any]) -> list[Any]:
    ids = [row.id for row in rows]
    return list(session.scalars(select(Scan).where(Scan.patient_id.in_(ids))))


def _reports_with_result(session: Session, rows: list[Any]) -> list[Any]:
    scan_ids = {row.scan_id for row in rows}
    return list(session.scalars(select(Report).where(Report.scan_id.in_(scan_ids))))


def _observations_derived_from(session: Session, rows: list[Any]) -> list[Any]:
    """Observations of matched ImagingStudies, or doctors' Observations of matched AI ones."""
    studies = [row.id for row in rows if isinstance(row, Scan)]
    predictions = [row.id for row in rows if isinstance(row, AiPrediction)]
    return [*session.scalars(select(AiPrediction).where(AiPrediction.scan_id.in_(studies))),
            *session.scalars(select(DoctorReview).where(DoctorReview.scan_id.in_(studies))),
            *session.scalars(select(DoctorReview).where(
                DoctorReview.prediction_id.in_(predictions)))]


def _provenance_targeting(session: Session, rows: list[Any]) -> list[Any]:
    wanted = {f"{type_of(row)}/{row.id}" for row in rows}
    scan_ids = {row.id if isinstance(row, Scan) else row.scan_id for row in rows}
    events = session.scalars(select(WorkflowEvent).where(WorkflowEvent.scan_id.in_(scan_ids)))
    return [event for event in events if wanted & set(event.targets)]


REVERSE: dict[str, Callable[[Session, list[Any]], list[Any]]] = {
    "ImagingStudy:patient": _studies_of_patients,
    "DiagnosticReport:result": _reports_with_result,
    "Observation:derived-from": _observations_derived_from,
    "Provenance:target": _provenance_targeting,
}


def _named(value: str) -> str:
    """`Type:param[:Target]` -> `Type:param` (the target type is implied here)."""
    return ":".join(value.split(":")[:2])


def supported(kind: str, resource_type: str) -> tuple[str, ...]:
    """The names `kind` (`_include` or `_revinclude`) accepts when searching this type."""
    return (INCLUDES if kind == "_include" else REVINCLUDES).get(resource_type, ())


def find_included(session: Session, kind: str, value: str, rows: list[Any]) -> list[Any]:
    """The rows one supported `_include`/`_revinclude` value adds to `rows` (unfiltered)."""
    name = _named(value)
    if not rows:
        return []
    if kind == "_include":
        return FORWARD[name](rows)
    return REVERSE[name](session, rows)


def is_supported(kind: str, resource_type: str, value: str) -> bool:
    return _named(value) in supported(kind, resource_type)


def visible_unique(viewer: Viewer, found: Iterable[Any], matched: list[Any]) -> list[Any]:
    """Included rows the viewer may see, each once, leaving out rows already matched."""
    seen = {(type(row), row.id) for row in matched}
    unique: list[Any] = []
    for row in found:
        if row is None or (type(row), row.id) in seen or not viewer.sees(row):
            continue
        seen.add((type(row), row.id))
        unique.append(row)
    return unique
