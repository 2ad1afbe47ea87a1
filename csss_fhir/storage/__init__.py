"""storage: content-addressed blob storage (scan images, report PDFs) behind one interface.

`base.py` is the contract; one module per backend (`file.py`, `database.py`, `s3.py`) with
its optional library imported only there; `lifetime.py` copies blobs between backends and
collects the ones no row names. No Flask here: `create_app` builds the store with
`open_store` and keeps it in `Services.store`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from csss_fhir.settings import Settings
from csss_fhir.storage.base import (
    BACKENDS,
    BlobNotFoundError,
    BlobStore,
    StorageError,
    StoredBlob,
)

__all__ = ["BACKENDS", "BlobNotFoundError", "BlobStore", "StorageError", "StoredBlob",
           "open_store"]


def open_store(settings: Settings, instance_path: Path, engine: Callable[[], Engine],
               backend: str | None = None) -> BlobStore:
    """The blob store `backend` (default: STORAGE_BACKEND) as `settings` configure it.

    `engine` gives the app's database engine (used by the postgresql backend only).
    """
    backend = backend or settings.storage_backend
    if backend == "file":
        from csss_fhir.storage.file import FileBlobStore

        return FileBlobStore(settings.storage_dir or instance_path / "storage")
    if backend == "postgresql":
        from csss_fhir.storage.database import DatabaseBlobStore

        return DatabaseBlobStore(engine())
    if backend == "s3":
        from csss_fhir.storage.s3 import S3BlobStore

        if not settings.s3_bucket:
            raise StorageError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        return S3BlobStore(
            settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region, access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key, prefix=settings.s3_prefix)
    raise StorageError(f"storage backend {backend!r} is unknown; use one of {BACKENDS}")
