"""Blobs in the service's own database: `STORAGE_BACKEND=postgresql`.

As Orthanc's PostgreSQL storage plugin does, the bytes go into a table (`blob_content`,
bytea on PostgreSQL, keyed by SHA-256), so several app nodes share them with nothing more
than the database they already share. It works on SQLite too (the tests use it there).

Each call runs in its own short transaction on its own pooled connection, independent of
the request's session: like a file write, a `put` is durable before the request commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from csss_fhir.models import BlobContent, utcnow
from csss_fhir.storage.base import (
    BlobNotFoundError,
    BlobStore,
    StorageError,
    StoredBlob,
    checked_digest,
)

TABLE = BlobContent.__table__


class DatabaseBlobStore(BlobStore):
    backend = "postgresql"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _put(self, sha256: str, data: bytes) -> bool:
        checked_digest(sha256)
        # Refresh first: the UPDATE takes the row lock a concurrent collector's DELETE
        # needs, so of the two exactly one happens first and the other sees it.
        with self.engine.begin() as connection:
            refreshed = connection.execute(
                update(TABLE).where(TABLE.c.sha256 == sha256).values(stored_at=utcnow()))
        if refreshed.rowcount:
            return False
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(TABLE).values(
                    sha256=sha256, size=len(data), stored_at=utcnow(), data=data))
        except IntegrityError:  # a concurrent request stored the same bytes first
            return False
        return True

    def get(self, sha256: str) -> bytes:
        checked_digest(sha256)
        with self.engine.connect() as connection:
            data = connection.scalar(select(TABLE.c.data).where(TABLE.c.sha256 == sha256))
        if data is None:
            raise BlobNotFoundError(f"blob {sha256} is not in the blob_content table")
        return bytes(data)

    def exists(self, sha256: str) -> bool:
        checked_digest(sha256)
        with self.engine.connect() as connection:
            return connection.scalar(
                select(TABLE.c.sha256).where(TABLE.c.sha256 == sha256)) is not None

    def blobs(self) -> Iterator[StoredBlob]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(TABLE.c.sha256, TABLE.c.stored_at)).all()
        for sha256, stored_at in rows:
            yield StoredBlob(sha256, stored_at)

    def delete_if_stored_before(self, sha256: str, cutoff: datetime) -> bool:
        checked_digest(sha256)
        with self.engine.begin() as connection:
            result = connection.execute(delete(TABLE).where(
                TABLE.c.sha256 == sha256, TABLE.c.stored_at < cutoff))
        return bool(result.rowcount)

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(TABLE))

    def check(self) -> str:
        """Count the blobs, and insert a probe row in a transaction that is rolled back
        (proves the table exists and may be written, and leaves nothing behind)."""
        where = self.describe()
        probe = "0" * 64
        try:
            with self.engine.connect() as connection, connection.begin() as transaction:
                count = connection.scalar(select(func.count()).select_from(TABLE))
                connection.execute(delete(TABLE).where(TABLE.c.sha256 == probe))
                connection.execute(insert(TABLE).values(
                    sha256=probe, size=0, stored_at=utcnow(), data=b""))
                transaction.rollback()
        except SQLAlchemyError as err:
            raise StorageError(f"{where}: cannot read and write the blob_content table "
                               f"({type(err).__name__}); run `csss db upgrade` and check "
                               "DATABASE_URL and the role's privileges") from err
        return f"{where}: {count} blob(s) in the blob_content table, writable"

    def describe(self) -> str:
        return f"postgresql: {self.engine.url.render_as_string(hide_password=True)}"
