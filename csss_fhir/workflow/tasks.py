"""What every workflow step does around its change: check the actor and the state, lock the
scan's Task, honour `If-Match`, record the WorkflowEvent (the Provenance), and commit so that
of two racing requests exactly one wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from csss_fhir import limits
from csss_fhir.errors import InvalidInputError, PreconditionFailedError, ResourceNotFoundError
from csss_fhir.models import Scan, Task, WorkflowEvent, utcnow
from csss_fhir.security import scopes
from csss_fhir.security.actor import Actor
from csss_fhir.storage import BlobStore
from csss_fhir.workflow.errors import StepNotAllowedError, WrongStateError
from csss_fhir.workflow.states import RULES, WRITES, Step, may_take


def require_step(actor: Actor, step: Step) -> None:
    """Raises StepNotAllowedError when the actor's role (or scopes) may not take `step`."""
    if not may_take(actor.role, actor.scopes, step):
        raise StepNotAllowedError(f"the {actor.role} role may not {step.value} scans")
    scopes.require_app_permission(actor, *WRITES[step], doing=step.value)


def required_note(note: str | None, refusal: str, *, field: str = "note") -> str:
    """The note without surrounding blanks; InvalidInputError(`refusal`) when it is empty,
    or when it is longer than limits.NOTE."""
    if not note or not note.strip():
        raise InvalidInputError(refusal, field=field)
    return limits.check_length("the note", note.strip(), limits.NOTE)


def find_scan(session: Session, study_id: str) -> Scan:
    """Raises ResourceNotFoundError when no scan has this id."""
    scan = session.get(Scan, study_id)
    if scan is None:
        raise ResourceNotFoundError(f"ImagingStudy/{study_id} does not exist")
    return scan


def check_state(task: Task, step: Step) -> None:
    """Raises WrongStateError (409) when the Task is not in a state `step` starts from."""
    rule = RULES[step]
    if not rule.starts_from(task.state):
        expected = " or ".join(sorted({rule.from_state, *rule.also_from}))
        raise WrongStateError(
            f"{step.value} needs the scan in state {expected}; it is in {task.state}",
            details=task.state,
        )


def etag_version(if_match: str) -> str:
    """The version an `If-Match` value names: `W/"3"`, `"3"` and `3` all name version 3.

    The API sends weak ETags (`W/"<versionId>"`); clients echo them back, some without the
    weak prefix or the quotes.
    """
    return if_match.strip().removeprefix("W/").strip('"')


def check_version(if_match: str | None, *, reference: str, current: int) -> None:
    """Raises PreconditionFailedError (412) when `If-Match` names another version than
    `current` of `reference` (e.g. "Task/123"); no `If-Match` means no check."""
    if if_match is None:
        return
    wanted = etag_version(if_match)
    if wanted != str(current):
        raise PreconditionFailedError(
            f"If-Match names version {wanted} of {reference}; the current version is "
            f"{current}. Read {reference} again and retry."
        )


def locked_task(session: Session, scan: Scan, step: Step, if_match: str | None) -> Task:
    """Lock the scan's Task row and check the step may start from its state.

    `If-Match` on a workflow operation names the version of the scan's Task.
    Lock the Task, not the study: the Task is the one row every step of one scan changes.
    """
    task = session.scalar(select(Task).where(Task.scan_id == scan.id).with_for_update())
    check_state(task, step)
    check_version(if_match, reference=f"Task/{task.id}", current=task.version_id)
    return task


def transition(task: Task, step: Step) -> str:
    """Move the Task to the state `step` leads to; returns the state it was in."""
    previous = task.state
    task.state = RULES[step].to_state
    task.updated_at = utcnow()
    return previous


def record_event(session: Session, actor: Actor, task: Task, step: Step,
                 from_state: str | None, targets: list[str],
                 device_id: str | None = None, reason: str | None = None) -> WorkflowEvent:
    """Add the WorkflowEvent (rendered as a Provenance) for a step on `targets`."""
    event = WorkflowEvent(
        scan_id=task.scan_id, patient_id=task.patient_id, task_id=task.id, step=step.value,
        from_state=from_state, to_state=task.state, actor_user_id=actor.user_id,
        actor_client=actor.client_id, actor_reference=actor.reference, targets=targets,
        device_id=device_id, reason=reason,
    )
    session.add(event)
    return event


@contextmanager
def one_winner(session: Session) -> Iterator[None]:
    """Write a transition so that, of two racing requests, the loser gets a 409.

    The loser is told apart by the database, whichever way it notices first: the Task's
    version moved (StaleDataError), a one-per-scan row already exists (IntegrityError on
    its unique scan_id), or SQLite refused the stale writer (database is locked).
    Nothing of the losing request stays.
    """
    try:
        yield
        session.commit()
    except (StaleDataError, IntegrityError) as err:
        session.rollback()
        raise WrongStateError("another request changed this scan at the same time; "
                              "read it again") from err
    except OperationalError as err:
        session.rollback()
        if "locked" in str(err).lower():
            raise WrongStateError("another request is changing this scan; retry") from err
        raise


@contextmanager
def stored(session: Session, store: BlobStore, data: bytes) -> Iterator[str]:
    """Store `data` for the enclosed transaction and yield its SHA-256; roll back if the
    block fails.

    The blob stays when the transaction fails: storage is content-addressed, so a racing
    request may have stored the same bytes and committed a row naming them meanwhile
    (issue 15 #6: deleting here lost that row's image). `csss storage gc` removes blobs
    that no row names once they are older than its grace period.
    """
    digest, _ = store.put(data)
    try:
        yield digest
    except BaseException:
        session.rollback()
        raise
