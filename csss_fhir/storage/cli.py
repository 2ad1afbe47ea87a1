"""`csss storage`: move blobs between backends and collect unreferenced ones."""

from __future__ import annotations

from datetime import timedelta

import click
from flask.cli import with_appcontext

from csss_fhir.storage.base import BACKENDS, StorageError
from csss_fhir.storage.lifetime import MINIMUM_GRACE, collect_garbage, copy_blobs


@click.group("storage")
def storage_group() -> None:
    """Blob storage (scan images, report PDFs)."""


def _store(backend: str | None):  # -> BlobStore
    from csss_fhir.extensions import services
    from csss_fhir.models import db
    from csss_fhir.storage import open_store

    svc = services()
    if backend is None or backend == svc.settings.storage_backend:
        return svc.store
    try:
        return open_store(svc.settings, svc.instance_path, engine=lambda: db.engine,
                          backend=backend)
    except StorageError as err:
        raise click.ClickException(str(err)) from err


@storage_group.command("migrate")
@click.option("--to", "to_backend", required=True, type=click.Choice(BACKENDS),
              help="the backend to copy every blob to")
@click.option("--from", "from_backend", type=click.Choice(BACKENDS),
              help="the backend to copy from (default: STORAGE_BACKEND)")
@with_appcontext
def storage_migrate(to_backend: str, from_backend: str | None) -> None:
    """Copy every blob to another backend, verifying each SHA-256.

    Safe to run again (blobs already there are skipped) and while the service runs. The
    source is kept: switch STORAGE_BACKEND afterwards, run it once more to copy what came
    in meanwhile, and remove the old store when `csss check` passes.
    """
    source, target = _store(from_backend), _store(to_backend)
    if source.describe() == target.describe():
        raise click.ClickException(f"source and target are both {source.describe()}; "
                                   "name another backend with --to or --from")
    click.echo(f"copying from {source.describe()} to {target.describe()}", err=True)
    try:
        report = copy_blobs(source, target)
    except StorageError as err:
        raise click.ClickException(str(err)) from err
    for sha256, reason in report.failed:
        click.echo(f"FAIL  {sha256}  {reason}", err=True)
    click.echo(f"copied {report.copied}, already there {report.present}, "
               f"failed {len(report.failed)}")
    if report.failed:
        raise click.ClickException(f"{len(report.failed)} blob(s) were not copied (listed "
                                   "above); fix the source and run the command again")


@storage_group.command("gc")
@click.option("--grace-hours", type=float, default=24.0, show_default=True,
              help="keep unreferenced blobs stored more recently than this")
@with_appcontext
def storage_gc(grace_hours: float) -> None:
    """Delete blobs that no scan or report names (left by failed requests)."""
    from csss_fhir.extensions import services
    from csss_fhir.models import db, utcnow

    grace = timedelta(hours=grace_hours)
    if grace < MINIMUM_GRACE:
        raise click.ClickException(
            f"--grace-hours {grace_hours:g} is below the minimum of "
            f"{MINIMUM_GRACE.total_seconds() / 3600:g}: a request still writing a blob's "
            "row could lose it")
    store = services().store
    try:
        report = collect_garbage(db.session, store, grace=grace, now=utcnow())
    except StorageError as err:
        raise click.ClickException(str(err)) from err
    click.echo(f"deleted {report.deleted} unreferenced blob(s) from {store.describe()}; "
               f"kept {report.referenced} referenced and {report.recent} stored within "
               f"{grace_hours:g} h")
