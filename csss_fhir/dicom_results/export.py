"""The `send_dicom` job: C-STORE one report version's DICOM result to PACS_DESTINATION.

Keyed by the `PacsExport` row (one per report version): the job claims it first, so a
duplicate message or the sweep finding it again sends it once; a sent export is never sent
again. A failure (no association, a refused context, a non-success status) is recorded on
the row with the attempt number and the job is due again after a back-off that doubles up
to an hour; after PACS_MAX_ATTEMPTS the row ends "failed" with the last error.
"""

from __future__ import annotations

import io
import logging
from datetime import timedelta

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from csss_fhir.dicom_results.results import of_report
from csss_fhir.extensions import Services
from csss_fhir.models import PacsExport, utcnow
from csss_fhir.settings import PacsDestination

log = logging.getLogger(__name__)

CLAIM_SECONDS = 300  # longer than any send; a killed worker's claim lapses
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
NETWORK_TIMEOUT_SECONDS = 30


class PacsError(Exception):
    """The PACS did not take the instances; the message says what happened (no patient data)."""


def send(session: Session, svc: Services, export_id: str) -> str:
    """Send one export if it is pending and unclaimed; return "sent", "retrying", "failed"
    or "skipped"."""
    now = utcnow()
    claimed = session.execute(
        update(PacsExport).where(PacsExport.id == export_id, PacsExport.state == "pending",
                                 or_(PacsExport.claimed_until.is_(None),
                                     PacsExport.claimed_until < now))
        .values(attempts=PacsExport.attempts + 1,
                claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)).rowcount
    session.commit()
    if claimed != 1:
        return "skipped"
    export = session.get(PacsExport, export_id)
    datasets = [dcmread(io.BytesIO(svc.store.get(row.image.sha256)))
                for row in of_report(session, export.report_id, export.report_version)]
    try:
        store(PacsDestination.parse(export.destination), datasets,
              calling_ae=svc.settings.dicom_ae_title)
    except PacsError as err:
        return _failed(session, svc, export, str(err))
    export.state, export.sent_at = "sent", utcnow()
    export.claimed_until, export.last_error = None, None
    session.commit()
    log.info("DICOM result sent", extra={"export_id": export.id, "attempt": export.attempts,
                                         "instances": len(datasets)})
    return "sent"


def _failed(session: Session, svc: Services, export: PacsExport, error: str) -> str:
    export.last_error = f"attempt {export.attempts}: {error}"[:500]
    export.claimed_until = None
    if export.attempts >= svc.settings.pacs_max_attempts:
        export.state = "failed"
    else:
        delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (export.attempts - 1))
        export.due_at = utcnow() + timedelta(seconds=delay)
    session.commit()
    log.warning("DICOM result not sent", extra={"export_id": export.id,
                                                "attempt": export.attempts,
                                                "state": export.state, "error": error})
    return "failed" if export.state == "failed" else "retrying"


def store(destination: PacsDestination, datasets: list[Dataset], *, calling_ae: str) -> None:
    """C-STORE `datasets` in one association.

    Raises:
        PacsError: no association, or an instance the PACS did not store (with its status).
    """
    ae = AE(ae_title=calling_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT_SECONDS
    for sop_class in sorted({str(d.SOPClassUID) for d in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    where = f"{destination.ae_title}@{destination.host}:{destination.port}"
    association = ae.associate(destination.host, destination.port,
                               ae_title=destination.ae_title)
    if not association.is_established:
        raise PacsError(f"no association with {where} (refused, aborted or not answering); "
                        "check PACS_DESTINATION and that the PACS accepts our AE title "
                        f"{calling_ae!r}")
    try:
        for dataset in datasets:
            status = association.send_c_store(dataset)
            code = getattr(status, "Status", None)
            if code is None:
                raise PacsError(f"{where} did not answer the C-STORE (connection lost or "
                                "timed out)")
            if code not in (0x0000, 0xB000, 0xB006, 0xB007):  # success or warning
                raise PacsError(f"{where} refused a {dataset.Modality} instance with status "
                                f"0x{code:04X}")
    finally:
        association.release()
