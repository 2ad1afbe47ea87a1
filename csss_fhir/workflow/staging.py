"""Files posted as a FHIR Binary before the $upload that names them (issue 16 item 5).

`POST /fhir/Binary` stages the bytes; `$upload` with `file = Binary/<id>` takes them. The
rules: only those who may upload scans and are staff or systems (a patient uploads the file
itself) may stage one; a staged file is taken only by whoever staged it, and only once.
The file checks (type, size, decoding) are the upload's own, made when it is taken.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete
from sqlalchemy.orm import Session

from csss_fhir.errors import ConflictError, ResourceNotFoundError
from csss_fhir.models import StagedBinary
from csss_fhir.security.actor import Actor
from csss_fhir.workflow.errors import StepNotAllowedError
from csss_fhir.workflow.states import Step
from csss_fhir.workflow.tasks import require_step

log = logging.getLogger(__name__)


def require_stager(actor: Actor) -> None:
    """Refuse callers who may not stage files, before their (large) body is read.

    Raises:
        StepNotAllowedError: the actor may not upload scans, or is a patient.
    """
    require_step(actor, Step.UPLOAD)
    if actor.is_patient:
        raise StepNotAllowedError("patients send the file in $upload itself; POST Binary is "
                                  "for staff and hospital systems")


def stage_binary(session: Session, actor: Actor, data: bytes, content_type: str
                 ) -> StagedBinary:
    """Keep a file for a later $upload by the same actor.

    Raises:
        StepNotAllowedError: see `require_stager`.
    """
    require_stager(actor)
    staged = StagedBinary(content_type=content_type, data=data, owner_user_id=actor.user_id,
                          owner_client_id=None if actor.user_id else actor.client_id)
    session.add(staged)
    session.commit()
    log.info("binary staged", extra={"binary_id": staged.id, "size": len(data)})
    return staged


def staged_file(session: Session, actor: Actor, binary_id: str) -> StagedBinary:
    """The staged file `Binary/<binary_id>` of this actor; the upload that uses it deletes
    it (`take`, through `UploadRequest.staged_binary_id`).

    Raises:
        ResourceNotFoundError: no such staged file, already taken, or staged by someone
            else (one answer for all three: ids of others' files are not confirmed).
    """
    staged = session.get(StagedBinary, binary_id)
    if staged is None or not _owns(actor, staged):
        raise ResourceNotFoundError(
            f"Binary/{binary_id} is not a file you posted and have not used yet; POST the "
            "file to /fhir/Binary and name the id it returns")
    return staged


def take(session: Session, binary_id: str) -> None:
    """Delete the staged file in the upload's transaction, so no second $upload uses it.

    Raises:
        ConflictError: another $upload took it meanwhile (the delete found no row).
    """
    result = session.execute(delete(StagedBinary).where(StagedBinary.id == binary_id))
    if result.rowcount != 1:
        session.rollback()
        raise ConflictError(f"Binary/{binary_id} was used by another $upload at the same "
                            "time; each posted file makes one scan")


def _owns(actor: Actor, staged: StagedBinary) -> bool:
    if actor.user_id:
        return staged.owner_user_id == actor.user_id
    return staged.owner_client_id is not None and staged.owner_client_id == actor.client_id
