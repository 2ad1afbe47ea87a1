"""Blobs in an S3-compatible object store: `STORAGE_BACKEND=s3` (boto3).

Any store that speaks the S3 API (AWS S3, MinIO, Ceph RGW, Garage...): `S3_ENDPOINT_URL`
(unset: AWS), `S3_BUCKET`, `S3_REGION`, `S3_ACCESS_KEY_ID`/`S3_SECRET_ACCESS_KEY` (unset:
boto3's usual credential chain) and `S3_PREFIX`. A blob is the object `<prefix><sha256>`;
one PUT is atomic, so a reader never sees half an object. Its LastModified is its stored
time: storing the same bytes again copies the object onto itself, which refreshes it.

boto3 is imported only here, so the other backends run without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from csss_fhir.storage.base import (
    BlobNotFoundError,
    BlobStore,
    StorageError,
    StoredBlob,
    checked_digest,
    digest_of,
)

NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


class S3BlobStore(BlobStore):
    backend = "s3"

    def __init__(self, bucket: str, *, endpoint_url: str | None = None,
                 region: str | None = None, access_key_id: str | None = None,
                 secret_access_key: str | None = None, prefix: str = "",
                 timeout_seconds: float = 10.0) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.endpoint_url = endpoint_url
        config = Config(
            connect_timeout=timeout_seconds, read_timeout=timeout_seconds,
            retries={"max_attempts": 3, "mode": "standard"},
            # S3-compatible servers are reached by address, where virtual-host style
            # (bucket.host) does not resolve.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            config=config)

    def key_for(self, sha256: str) -> str:
        return self.prefix + checked_digest(sha256)

    def _put(self, sha256: str, data: bytes) -> bool:
        key = self.key_for(sha256)
        try:
            if self._last_modified(key) is not None:
                # REPLACE: S3 refuses a copy onto itself that changes nothing.
                self.client.copy_object(
                    Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": key},
                    MetadataDirective="REPLACE", Metadata={"sha256": sha256})
                return False
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   Metadata={"sha256": sha256})
        except (BotoCoreError, ClientError) as err:
            raise self._failure("store", err) from err
        return True

    def get(self, sha256: str) -> bytes:
        key = self.key_for(sha256)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as err:
            if _code(err) in NOT_FOUND:
                raise BlobNotFoundError(f"blob {sha256} is not in {self.describe()}") from err
            raise self._failure("read", err) from err
        except BotoCoreError as err:
            raise self._failure("read", err) from err

    def exists(self, sha256: str) -> bool:
        return self._last_modified(self.key_for(sha256)) is not None

    def blobs(self) -> Iterator[StoredBlob]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix):]
                    if len(name) == 64 and "/" not in name:
                        yield StoredBlob(name, item["LastModified"])
        except (BotoCoreError, ClientError) as err:
            raise self._failure("list", err) from err

    def delete_if_stored_before(self, sha256: str, cutoff: datetime) -> bool:
        """S3 has no delete conditional on LastModified: the age is read one round trip
        before the delete. A request re-storing the blob inside that window loses it, so
        the collector's grace period must exceed any request's duration (it does: hours)."""
        key = self.key_for(sha256)
        last_modified = self._last_modified(key)
        if last_modified is None or last_modified >= cutoff:
            return False
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as err:
            raise self._failure("delete", err) from err
        return True

    def check(self) -> str:
        probe = b"csss-check"
        key = f"{self.prefix}.csss-check"
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=probe)
            read = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as err:
            raise self._failure("write a probe to", err) from err
        if read != probe:
            raise StorageError(f"{self.describe()} returned other bytes than were written "
                               f"(sha256 {digest_of(read)[:12]}...); check the store")
        return f"{self.describe()} is writable"

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"s3: bucket {self.bucket!r} at {where}"

    def _last_modified(self, key: str) -> datetime | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["LastModified"]
        except ClientError as err:
            if _code(err) in NOT_FOUND:
                return None
            raise self._failure("read", err) from err
        except BotoCoreError as err:
            raise self._failure("read", err) from err

    def _failure(self, action: str, err: Exception) -> StorageError:
        reason = _code(err) if isinstance(err, ClientError) else type(err).__name__
        return StorageError(f"cannot {action} {self.describe()} ({reason}); check "
                            "S3_ENDPOINT_URL, S3_BUCKET, S3_REGION and the credentials")


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
