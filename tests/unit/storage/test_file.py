"""The file backend: layout, atomic writes, and the collector's move-aside."""

from __future__ import annotations

import os
from datetime import timedelta

from csss_fhir.models import utcnow
from csss_fhir.storage.file import FileBlobStore


def test_blobs_are_files_named_by_their_digest(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    digest, _ = store.put(b"pdf bytes")
    assert store.path_for(digest) == tmp_path / "blobs" / digest[:2] / digest[2:4] / digest
    assert store.path_for(digest).read_bytes() == b"pdf bytes"
    assert sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()) == [digest]


def test_a_blob_touched_before_collection_is_put_back_whole(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    digest, _ = store.put(b"reused by a request")
    old = (utcnow() - timedelta(days=3)).timestamp()
    os.utime(store.path_for(digest), (old, old))
    store.put(b"reused by a request")  # a request re-stores it: the stored time is now

    assert store.delete_if_stored_before(digest, utcnow() - timedelta(days=1)) is False
    assert store.get(digest) == b"reused by a request"
    assert [p.name for p in store.path_for(digest).parent.iterdir()] == [digest]


def test_blobs_skips_temporary_and_probe_files(tmp_path):
    store = FileBlobStore(tmp_path / "blobs")
    digest, _ = store.put(b"x")
    (store.path_for(digest).parent / ".incoming-abc").write_bytes(b"half")
    assert [b.sha256 for b in store.blobs()] == [digest]
