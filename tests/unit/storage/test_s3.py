"""The s3 backend against moto's S3 server on loopback (there is no real S3 server here)."""

from __future__ import annotations

import pytest

from csss_fhir.storage import StorageError
from csss_fhir.storage.s3 import S3BlobStore
from tests.servers import free_port
from tests.unit.storage.conftest import S3_CREDENTIALS


def test_blobs_are_objects_under_the_prefix(moto_server, s3_bucket):
    store = S3BlobStore(s3_bucket, endpoint_url=moto_server, region="us-east-1",
                        prefix="csss/blobs/", **S3_CREDENTIALS)
    digest, _ = store.put(b"scan bytes")
    keys = [o["Key"] for o in store.client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys == [f"csss/blobs/{digest}"]
    assert [b.sha256 for b in store.blobs()] == [digest]


def test_a_missing_bucket_fails_the_check_naming_the_settings(moto_server):
    store = S3BlobStore("no-such-bucket", endpoint_url=moto_server, region="us-east-1",
                        **S3_CREDENTIALS)
    with pytest.raises(StorageError, match="NoSuchBucket.*S3_BUCKET"):
        store.check()


def test_an_unreachable_endpoint_is_a_storage_error_without_credentials():
    store = S3BlobStore("bucket", endpoint_url=f"http://127.0.0.1:{free_port()}",
                        region="us-east-1", timeout_seconds=1, **S3_CREDENTIALS)
    with pytest.raises(StorageError, match="S3_ENDPOINT_URL") as caught:
        store.get("0" * 64)
    assert "testing" not in str(caught.value)
