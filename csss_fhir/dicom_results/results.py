"""Build and store the DICOM result of one report version, in the release's transaction."""

from __future__ import annotations

import logging
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters import dicom, dicom_sr
from csss_fhir import jobs
from csss_fhir.errors import CsssError
from csss_fhir.extensions import Services
from csss_fhir.models import Blob, DicomResult, PacsExport, Report, Scan, utcnow
from csss_fhir.reports.scan_images import gradcam_overlay

log = logging.getLogger(__name__)

SEX = {"male": "M", "female": "F", "other": "O"}


def record(session: Session, svc: Services, scan: Scan, report: Report, *,
           gradcam_png: bytes | None) -> list[DicomResult]:
    """Build, store and add the SR (and Grad-CAM SC) of `report`'s current version.

    A result that cannot be built is logged and skipped: the release of the report to the
    patient is never held back by its DICOM copy. Queues the PACS export when
    PACS_DESTINATION is set.
    """
    started = time.perf_counter()
    prediction = scan.prediction
    if gradcam_png is None and scan.source_format == "dicom" and prediction is not None \
            and prediction.assessable:
        gradcam_png = _dicom_gradcam(svc, scan, prediction.top_class)
    try:
        instances = dicom_sr.build(values(scan, report, gradcam_png))
    except CsssError as err:
        log.warning("DICOM result not built", extra={"report_id": report.id,
                                                     "error": type(err).__name__})
        return []
    rows = []
    for instance in instances:
        digest, _ = svc.store.put(instance.data)
        blob = Blob(sha256=digest, content_type=dicom.DICOM_CONTENT_TYPE,
                    size=len(instance.data), patient_id=scan.patient_id)
        session.add(blob)
        session.flush()
        row = DicomResult(scan_id=scan.id, patient_id=scan.patient_id, report_id=report.id,
                          report_version=report.version_id, kind=instance.kind,
                          series_uid=instance.series_uid, instance_uid=instance.instance_uid,
                          sop_class_uid=instance.sop_class_uid, modality=instance.modality,
                          series_number=instance.series_number,
                          instance_number=instance.instance_number, height=instance.height,
                          width=instance.width, image_id=blob.id)
        session.add(row)
        rows.append(row)
    session.flush()
    destination = svc.settings.pacs_destination
    if destination is not None:
        export = PacsExport(report_id=report.id, report_version=report.version_id,
                            destination=f"{destination.ae_title}@{destination.host}:"
                                        f"{destination.port}",
                            state="pending", attempts=0, due_at=utcnow())
        session.add(export)
        session.flush()
        jobs.enqueue(session, jobs.SEND_DICOM, export.id)
    log.info("DICOM result built", extra={
        "report_id": report.id, "version": report.version_id, "instances": len(rows),
        "build_ms": round((time.perf_counter() - started) * 1000, 1),
        "pacs": destination is not None})
    return rows


def values(scan: Scan, report: Report, gradcam_png: bytes | None) -> dicom_sr.ResultValues:
    """The plain values of `report`'s current version that its DICOM result shows."""
    prediction, review, patient = scan.prediction, scan.review, scan.patient
    device = prediction.device
    return dicom_sr.ResultValues(
        study_uid=scan.study_uid, series_uid=scan.series_uid, instance_uid=scan.instance_uid,
        sop_class_uid=scan.sop_class_uid if scan.source_format == "dicom" else None,
        modality=scan.modality, study_started=scan.started or scan.created_at,
        patient_name="^".join((patient.family_name, patient.given_names)),
        patient_id=patient.mrn or patient.id, birth_date=patient.birth_date,
        sex=SEX.get(patient.gender or ""),
        model_name=device.name if device else "none (image unreadable)",
        model_version=device.version if device else "-",
        ai_top_class=prediction.top_class, ai_label=prediction.label,
        probabilities=dict(prediction.probabilities), doctor_name=review.doctor.name,
        verified_at=review.created_at, finding=report.finding or review.finding,
        report_version=report.version_id, gradcam_png=gradcam_png)


def _dicom_gradcam(svc: Services, scan: Scan, top_class: str) -> bytes | None:
    try:
        png = dicom.render(svc.store.get(scan.image.sha256), "image/png",
                           max_pixels=svc.settings.max_image_pixels)
    except CsssError:
        return None
    return gradcam_overlay(svc.classifier, png, top_class)


def of_report(session: Session, report_id: str, version: int) -> list[DicomResult]:
    """The derived instances of one report version, the SR first."""
    return list(session.scalars(select(DicomResult).where(
        DicomResult.report_id == report_id, DicomResult.report_version == version)
        .order_by(DicomResult.kind.desc())))
