"""Every backend keeps the blob store's contract (storage/base.py)."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

import pytest

from csss_fhir.models import utcnow
from csss_fhir.storage import BlobNotFoundError, BlobStore


def stored_at(store: BlobStore, sha256: str):
    [blob] = [b for b in store.blobs() if b.sha256 == sha256]
    return blob.stored_at


def test_put_is_content_addressed_and_idempotent(store):
    digest, created = store.put(b"chest x-ray bytes")
    assert digest == hashlib.sha256(b"chest x-ray bytes").hexdigest()
    assert created is True
    assert store.put(b"chest x-ray bytes") == (digest, False)
    assert store.get(digest) == b"chest x-ray bytes"
    assert store.exists(digest) and store.count() == 1
    assert [b.sha256 for b in store.blobs()] == [digest]


def test_a_missing_blob_is_blob_not_found(store):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing)
    with pytest.raises(BlobNotFoundError, match=missing):
        store.get(missing)


def test_a_name_that_is_no_digest_is_refused(store):
    with pytest.raises(ValueError, match="not a SHA-256"):
        store.get("../../etc/passwd")


def test_storing_again_refreshes_the_stored_time(store):
    digest, _ = store.put(b"reused")
    first = stored_at(store, digest)
    time.sleep(1.1)  # S3's LastModified has whole seconds
    store.put(b"reused")
    assert stored_at(store, digest) > first


def test_delete_if_stored_before_deletes_only_older_blobs(store):
    digest, _ = store.put(b"old enough?")
    assert store.delete_if_stored_before(digest, utcnow() - timedelta(minutes=5)) is False
    assert store.get(digest) == b"old enough?"
    assert store.delete_if_stored_before(digest, utcnow() + timedelta(minutes=5)) is True
    assert not store.exists(digest)
    assert store.delete_if_stored_before(digest, utcnow() + timedelta(minutes=5)) is False
    assert store.put(b"old enough?") == (digest, True)


def test_check_reports_where_the_blobs_are(store):
    assert store.backend in store.check()
    assert store.count() == 0  # the probe is not left behind
