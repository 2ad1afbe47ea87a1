"""The postgresql backend (here on the test database: SQLite, or PostgreSQL under
scripts/with-postgres.sh): racing puts of the same bytes store one row."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from csss_fhir.models import BlobContent, db
from csss_fhir.storage.database import DatabaseBlobStore


def test_racing_puts_of_the_same_bytes_store_one_row(app):
    with app.app_context():
        store = DatabaseBlobStore(db.engine)
        barrier = threading.Barrier(8)
        results: list[tuple[str, bool]] = []

        def put() -> None:
            barrier.wait()
            results.append(store.put(b"the same scan, uploaded eight times at once"))

        threads = [threading.Thread(target=put) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len({digest for digest, _ in results}) == 1
        assert sum(created for _, created in results) == 1
        assert db.session.scalar(select(func.count()).select_from(BlobContent)) == 1


def test_check_fails_naming_the_fix_when_the_table_is_missing(app):
    from sqlalchemy import text

    from csss_fhir.storage import StorageError

    with app.app_context():
        store = DatabaseBlobStore(db.engine)
        with db.engine.begin() as connection:
            connection.execute(text("DROP TABLE blob_content"))
        with pytest.raises(StorageError, match="csss db upgrade"):
            store.check()
