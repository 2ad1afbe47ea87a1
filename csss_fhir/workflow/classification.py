"""The AI's proposal: the job's classification of a new scan, a doctor's $classify (now, or
again), and "Not assessable" for an image no model can judge.

A scan is classified on upload by a background job (`csss_fhir.jobs`), which calls
`classify_new_scan`. A doctor may `classify` too: in PENDING_AI it classifies now, in
AI_ANALYZED it re-runs the model and the new proposal supersedes the previous one (which
stays readable, still `preliminary`: it was not wrong, only older). After verification the
proposal is part of the record and $classify is a 409.

Of a job and a doctor classifying at once exactly one wins: inference runs outside any lock,
then the Task is locked and its version compared with the one read before; the loser's
work is dropped (the job's silently, the doctor's as a 409).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from csss_fhir import history, subscriptions
from csss_fhir.classifier import device_for
from csss_fhir.extensions import Services
from csss_fhir.models import AiPrediction, ModelDevice, Scan, Task
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import ingest
from csss_fhir.workflow.errors import WrongStateError
from csss_fhir.workflow.states import ScanState, Step
from csss_fhir.workflow.tasks import (
    check_version,
    find_scan,
    one_winner,
    record_event,
    require_step,
)
from ml.assessability import REASON_TEXT
from ml.infer import NOT_ASSESSABLE

log = logging.getLogger(__name__)

REASON_LIMIT = 200  # AiPrediction.reason is String(200)
# Who classifies on upload: the service itself (Provenance: a system agent and the model).
JOB_ACTOR = Actor(role="system", client_id="csss-jobs", name="background classification")
CLASSIFIABLE = (ScanState.PENDING_AI, ScanState.AI_ANALYZED)


def classify(session: Session, svc: Services, actor: Actor, study_id: str,
             *, if_match: str | None = None) -> AiPrediction:
    """A doctor's $classify: classify a PENDING_AI scan now, or re-run an AI_ANALYZED one.

    Raises:
        StepNotAllowedError: not a doctor. WrongStateError: the scan is verified or later,
        or another classification finished while this one ran. PreconditionFailedError:
        If-Match names another version of the Task.
    """
    require_step(actor, Step.CLASSIFY)
    scan = find_scan(session, study_id)
    task = scan.task
    _check_classifiable(task)
    check_version(if_match, reference=f"Task/{task.id}", current=task.version_id)
    return _classify(session, svc, actor, scan, task.state, task.version_id)


def classify_new_scan(session: Session, svc: Services, scan_id: str) -> AiPrediction | None:
    """The background job's classification of a scan still in PENDING_AI.

    Returns None, changing nothing, when the scan is no longer waiting (a doctor was faster,
    or an earlier delivery of the same job did it). Errors of the model or the image
    propagate: the job counts them as failed attempts.
    """
    scan = session.get(Scan, scan_id)
    if scan is None or scan.task.state != ScanState.PENDING_AI:
        return None
    try:
        return _classify(session, svc, JOB_ACTOR, scan, ScanState.PENDING_AI,
                         scan.task.version_id)
    except WrongStateError:
        return None


def record_not_assessable(session: Session, svc: Services, scan_id: str, reason: str,
                          *, actor: Actor = JOB_ACTOR) -> AiPrediction | None:
    """End a scan's AI analysis as "Not assessable" with `reason` (a classification that kept
    failing). Returns None when the scan has left PENDING_AI meanwhile."""
    scan = session.get(Scan, scan_id)
    if scan is None or scan.task.state != ScanState.PENDING_AI:
        return None
    expected_version = scan.task.version_id
    session.rollback()
    try:
        return _write(session, svc, actor, scan_id, ScanState.PENDING_AI, expected_version,
                      _not_assessable_values(reason), metadata=_model_metadata(svc))
    except WrongStateError:
        return None


def _check_classifiable(task: Task) -> None:
    if task.state not in CLASSIFIABLE:
        raise WrongStateError(
            f"classify needs the scan in state {ScanState.PENDING_AI} or (to run the AI "
            f"again) {ScanState.AI_ANALYZED}; it is in {task.state}, and a verified scan's "
            "AI proposal is part of its record", details=task.state)


def _classify(session: Session, svc: Services, actor: Actor, scan: Scan, state: str,
              version: int) -> AiPrediction:
    """Run the model outside any lock, then write the result if the Task did not move."""
    classifier = svc.classifier.get()
    try:
        image = ingest.classifier_input(svc.store.get(scan.image.sha256), scan.source_format,
                                        svc.settings)
        prediction = classifier.predict(image, threshold=svc.settings.confidence_threshold)
    except _decode_errors() as err:
        # The decoder refuses this file, now and on every retry: say so, once.
        log.warning("scan not decodable", extra={"scan_id": scan.id,
                                                  "error": type(err).__name__})
        values = _not_assessable_values(f"the image could not be decoded ({type(err).__name__})")
    else:
        values = _prediction_values(prediction)
    scan_id = scan.id
    session.rollback()  # end the read transaction; the write below starts under a lock
    return _write(session, svc, actor, scan_id, state, version, values,
                  metadata=classifier.metadata)


def _write(session: Session, svc: Services, actor: Actor, scan_id: str, state: str,
           version: int, values: dict, *, metadata: dict | None) -> AiPrediction:
    """Lock the Task; if it is still in `state` at `version`, add the proposal (superseding
    the current one on a re-run) and commit."""
    from sqlalchemy import select

    scan = find_scan(session, scan_id)
    with one_winner(session):
        task = session.scalar(select(Task).where(Task.scan_id == scan.id).with_for_update())
        if task.state != state or task.version_id != version:
            session.rollback()  # release the lock now; nothing of this run is kept
            raise WrongStateError(
                "another classification of this scan finished while this one ran "
                f"(the scan is now in {task.state}); read its current AI proposal",
                details=task.state)
        device: ModelDevice | None = device_for(session, metadata) if metadata else None
        new_device = device is not None and device in session.new
        session.flush()
        previous_prediction = scan.prediction
        row = AiPrediction(scan_id=scan.id, patient_id=scan.patient_id,
                           device_id=device.id if device else None,
                           requested_by_id=actor.user_id, **values)
        session.add(row)
        session.flush()
        if previous_prediction is not None:
            previous_prediction.superseded_by_id = row.id
        previous_state = task.state
        task.state = ScanState.AI_ANALYZED
        task.updated_at = row.created_at
        session.flush()
        event = record_event(session, actor, task, Step.CLASSIFY, previous_state,
                             [f"Observation/{row.id}", f"Task/{task.id}"],
                             device_id=device.id if device else None)
        changed = [previous_prediction] if previous_prediction is not None else []
        history.record(session, *([device] if new_device else []), *changed, row, task, event)
        if previous_state != ScanState.AI_ANALYZED:  # a re-run asks for no second review
            subscriptions.record(session, subscriptions.SCAN_NEEDS_REVIEW, f"Task/{task.id}",
                                 task.patient_id)
    log.info("scan classified", extra={"scan_id": scan_id, "assessable": row.assessable,
                                       "rerun": previous_prediction is not None})
    return row


def _prediction_values(prediction: Any) -> dict:
    """The AiPrediction columns of a model's Prediction; a verdict of "not assessable"
    (ml.infer, when the classifier gives one) replaces the label."""
    assessable = bool(getattr(prediction, "assessable", True))
    reason = getattr(prediction, "reason", None)
    reason = REASON_TEXT.get(reason, reason)  # ml's code in words ("too_small" -> ...)
    values = {
        "label": prediction.label if assessable else NOT_ASSESSABLE,
        "top_class": prediction.top_class, "confidence": float(prediction.confidence),
        "probabilities": {k: float(v) for k, v in prediction.probabilities.items()},
        "threshold": float(prediction.threshold),
        "uncertain": bool(prediction.uncertain) or not assessable,
        "assessable": assessable,
        "reason": None if assessable else (reason or "the classifier cannot judge this image"
                                           )[:REASON_LIMIT],
    }
    return values


def _not_assessable_values(reason: str) -> dict:
    return {"label": NOT_ASSESSABLE, "top_class": NOT_ASSESSABLE, "confidence": 0.0,
            "probabilities": {}, "threshold": 0.0, "uncertain": True, "assessable": False,
            "reason": reason[:REASON_LIMIT]}


def _model_metadata(svc: Services) -> dict | None:
    """The model's metadata for the Device, or None when the model itself does not load."""
    try:
        return svc.classifier.get().metadata
    except Exception:  # the reason recorded is the image's; a broken model is `csss check`'s
        return None


def _decode_errors() -> tuple[type[Exception], ...]:
    """What the decoders raise for a file they refuse: ml's decoder, and the DICOM reader's
    refusals (CsssError subclasses such as "no pixel data")."""
    from csss_fhir.errors import CsssError
    from ml.infer import ImageDecodeError

    return (ImageDecodeError, CsssError)
