"""How blobs move and end: copy every blob to another backend, and collect the ones no
row names.

A blob lives as long as a `blob` row names its SHA-256. Requests never delete blobs (see
`workflow.tasks.stored`); `collect_garbage` does, for blobs no committed row names that
were last stored before a grace period. Why that is safe: a request stores (or re-stores,
refreshing the stored time) its blob before it commits the row naming it, so a row that
commits after the collector read the names belongs to a blob stored within the grace
period, as long as no request runs longer than the grace period (hours; requests have
statement and socket timeouts of seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.models import Blob
from csss_fhir.storage.base import BlobNotFoundError, BlobStore, digest_of

MINIMUM_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class CopyReport:
    """What `copy_blobs` did; `failed` names the blobs (SHA-256, never patient data) that
    could not be copied, each with the reason."""

    copied: int = 0
    present: int = 0
    failed: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def copy_blobs(source: BlobStore, target: BlobStore,
               progress: Callable[[int], None] | None = None) -> CopyReport:
    """Copy every blob of `source` that `target` lacks, verifying each SHA-256 on both sides.

    Idempotent and resumable: a blob already in `target` is skipped (every backend writes a
    blob atomically, so one that is there is whole), and a run stopped half-way is finished
    by running it again. `source` is left as it is.
    """
    copied = present = 0
    failed: list[tuple[str, str]] = []
    for number, blob in enumerate(source.blobs(), start=1):
        if progress is not None:
            progress(number)
        if target.exists(blob.sha256):
            present += 1
            continue
        try:
            data = source.get(blob.sha256)
        except BlobNotFoundError:
            failed.append((blob.sha256, "vanished from the source while copying"))
            continue
        if digest_of(data) != blob.sha256:
            failed.append((blob.sha256, f"source bytes hash to {digest_of(data)}: corrupt"))
            continue
        target.put(data)
        if digest_of(target.get(blob.sha256)) != blob.sha256:
            failed.append((blob.sha256, "the target returned other bytes than were written"))
            continue
        copied += 1
    return CopyReport(copied=copied, present=present, failed=tuple(failed))


@dataclass(frozen=True)
class CollectReport:
    deleted: int = 0
    referenced: int = 0
    recent: int = 0


def collect_garbage(session: Session, store: BlobStore, *, grace: timedelta,
                    now: datetime) -> CollectReport:
    """Delete the blobs no `blob` row names that were last stored before `now - grace`.

    The names are read once, first; see the module docstring for why that is enough.
    """
    referenced = set(session.scalars(select(Blob.sha256).distinct()))
    session.rollback()  # end the read transaction: the deletions may take long
    cutoff = now - grace
    deleted = kept_referenced = kept_recent = 0
    for blob in store.blobs():
        if blob.sha256 in referenced:
            kept_referenced += 1
        elif blob.stored_at < cutoff and store.delete_if_stored_before(blob.sha256, cutoff):
            deleted += 1
        else:
            kept_recent += 1
    return CollectReport(deleted=deleted, referenced=kept_referenced, recent=kept_recent)
