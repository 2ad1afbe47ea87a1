"""Fixtures for the blob store tests: one store of each backend.

There is no real S3 server here: the s3 backend is tested against moto's server mode
(`moto[server]`, ThreadedMotoServer) on loopback, over HTTP, as boto3 talks to any store.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from csss_fhir.storage import BlobStore
from tests.servers import free_port

S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """An S3-compatible server (moto) on a free loopback port; its endpoint URL."""
    server_module = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed (pip install 'moto[server]')")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port,
                                              verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(moto_server: str, request: pytest.FixtureRequest) -> str:
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"csss-{abs(hash(request.node.nodeid)) % 10**9}-{free_port()}"
    boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=["file", "postgresql", "s3"])
def store(request: pytest.FixtureRequest, app, tmp_path) -> BlobStore:
    """An empty store of each backend (postgresql: the test database, SQLite or not)."""
    if request.param == "file":
        from csss_fhir.storage.file import FileBlobStore

        return FileBlobStore(tmp_path / "blobs")
    if request.param == "postgresql":
        from csss_fhir.models import db
        from csss_fhir.storage.database import DatabaseBlobStore

        with app.app_context():
            return DatabaseBlobStore(db.engine)
    from csss_fhir.storage.s3 import S3BlobStore

    return S3BlobStore(request.getfixturevalue("s3_bucket"),
                       endpoint_url=request.getfixturevalue("moto_server"),
                       region="us-east-1", **S3_CREDENTIALS)
