"""The C-ECHO and C-STORE SCP: PACS and modalities push radiographs here.

Associations are accepted only from the calling AE titles in DICOM_ALLOWED_AE_TITLES and only
when they call our DICOM_AE_TITLE; pynetdicom rejects the others at A-ASSOCIATE. Presentation
contexts are every storage SOP class in the transfer syntaxes we can decode, so that an SCU
offering several syntaxes is never steered to one we would then refuse.

Each C-STORE runs in its association's thread, in its own app context and database session,
as one `workflow.receive.receive_instance` call by a system actor named after the calling AE
(scope system/ImagingStudy.write). The answer is Success (0x0000), also for an instance
already stored, or a failure status from `adapters.dicom.failure_reason` with an
ErrorComment saying why. Each store is audited like a STOW-RS request.
"""

from __future__ import annotations

import logging

from flask import Flask
from pydicom.dataset import Dataset
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.events import Event
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

from adapters import dicom
from csss_fhir.errors import ConfigurationError, CsssError
from csss_fhir.extensions import services
from csss_fhir.models import db
from csss_fhir.security import audit
from csss_fhir.security.actor import Actor
from csss_fhir.settings import Settings
from csss_fhir.workflow import receive

log = logging.getLogger(__name__)

SUCCESS = 0x0000
SENDER_SCOPE = "system/ImagingStudy.write"
COMMENT_LIMIT = 64  # ErrorComment (0000,0902) is LO: 64 characters


def application_entity(settings: Settings) -> AE:
    """Our AE: its title, the allow-list, Verification and every storage SOP class.

    Raises:
        ConfigurationError: DICOM_ALLOWED_AE_TITLES is empty (anyone could store).
    """
    if not settings.dicom_allowed_ae_titles:
        raise ConfigurationError(
            "DICOM_ALLOWED_AE_TITLES is empty; name the calling AE titles of the PACS and "
            "modalities that may store here (comma-separated), e.g. PACS,CR_ROOM_1")
    ae = AE(ae_title=settings.dicom_ae_title)
    ae.require_called_aet = True
    ae.require_calling_aet = list(settings.dicom_allowed_ae_titles)
    syntaxes = list(dicom.SUPPORTED_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, syntaxes)
    return ae


def serve(app: Flask, host: str, port: int, *, block: bool = False
          ) -> ThreadedAssociationServer | None:
    """Listen on (host, port) until stopped: in the background (the returned server's
    `shutdown()` stops it) or, with `block`, in this thread until interrupted."""
    ae = application_entity(app.extensions["csss"].settings)
    handlers = [(evt.EVT_C_ECHO, _on_echo), (evt.EVT_C_STORE, _on_store, [app])]
    return ae.start_server((host, port), block=block, evt_handlers=handlers)


def _on_echo(event: Event) -> int:
    return SUCCESS


def _on_store(event: Event, app: Flask) -> int | Dataset:
    calling = event.assoc.requestor.ae_title.strip()
    actor = Actor(role="system", client_id=f"dicom:{calling}", name=calling,
                  scopes=frozenset({SENDER_SCOPE}))
    with app.app_context():
        try:
            data = event.encoded_dataset()
            received = receive.receive_instance(db.session, services(), actor, data)
        except (CsssError, OSError) as error:
            _audit(actor, audit.MINOR_FAILURE, {None: []})
            log.info("c-store refused", extra={"reason": f"0x{dicom.failure_reason(error):04X}",
                                               "calling_ae": calling})
            return _failure(error)
        _audit(actor, audit.SUCCESS, {received.scan.patient_id: [
            f"ImagingStudy/{received.scan.id}"]})
        log.info("c-store", extra={"scan_id": received.scan.id,
                                   "outcome": received.outcome.value})
    return SUCCESS


def _failure(error: Exception) -> Dataset:
    status = Dataset()
    status.Status = dicom.failure_reason(error)
    if isinstance(error, CsssError):
        # The machine-readable reason first: the message alone may not fit in 64 characters.
        text = f"{error.details}: {error}" if error.details else str(error)
    else:
        text = "the instance could not be stored"
    status.ErrorComment = _shorten(text)
    return status


def _shorten(text: str) -> str:
    if len(text) <= COMMENT_LIMIT:
        return text
    cut = text[:COMMENT_LIMIT - 3].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:") + "..."


def _audit(actor: Actor, outcome: str, buckets: dict[str | None, list[str]]) -> None:
    db.session.rollback()
    audit.record(db.session, audit.Event(audit.PATIENT_RECORD, "C", outcome,
                                         description="DIMSE C-STORE"),
                 actor=actor, entities_by_patient=buckets)
    db.session.commit()
