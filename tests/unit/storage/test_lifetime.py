"""Copying blobs between backends, and collecting the ones no row names."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from csss_fhir.extensions import services
from csss_fhir.models import Scan, db, utcnow
from csss_fhir.storage.file import FileBlobStore
from csss_fhir.storage.lifetime import collect_garbage, copy_blobs
from tests.factories import make_scan


def test_copy_blobs_copies_verifies_and_resumes(store, tmp_path):
    source = FileBlobStore(tmp_path / "source")
    digests = [source.put(f"blob {n}".encode())[0] for n in range(3)]
    store.put(b"blob 0")  # as if an earlier run had stopped after the first blob

    report = copy_blobs(source, store)

    assert (report.copied, report.present, report.failed) == (2, 1, ())
    assert sorted(b.sha256 for b in store.blobs()) == sorted(digests)
    assert all(store.get(d) == source.get(d) for d in digests)
    again = copy_blobs(source, store)
    assert (again.copied, again.present, again.failed) == (0, 3, ())


def test_a_corrupt_source_blob_is_reported_and_not_copied(tmp_path):
    source, target = FileBlobStore(tmp_path / "source"), FileBlobStore(tmp_path / "target")
    digest, _ = source.put(b"the original bytes")
    source.path_for(digest).write_bytes(b"bit rot")

    report = copy_blobs(source, target)

    assert report.copied == 0
    [(name, reason)] = report.failed
    assert name == digest and hashlib.sha256(b"bit rot").hexdigest() in reason
    assert not target.exists(digest)


def test_gc_deletes_only_old_blobs_no_row_names(store, app):
    with app.app_context():
        scan_id, _ = make_scan()
        image = db.session.get(Scan, scan_id).image
        referenced, _ = store.put(services().store.get(image.sha256))
        orphan, _ = store.put(b"left by a failed request")

        later = utcnow() + timedelta(days=2)
        report = collect_garbage(db.session, store, grace=timedelta(days=1), now=later)

    assert (report.deleted, report.referenced, report.recent) == (1, 1, 0)
    assert store.exists(referenced) and not store.exists(orphan)


def test_gc_keeps_unreferenced_blobs_within_the_grace_period(store, app):
    with app.app_context():
        orphan, _ = store.put(b"a request may still commit a row naming this")
        report = collect_garbage(db.session, store, grace=timedelta(hours=1), now=utcnow())
    assert (report.deleted, report.recent) == (0, 1)
    assert store.exists(orphan)
