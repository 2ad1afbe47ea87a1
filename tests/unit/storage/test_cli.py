"""`csss storage migrate` and `csss storage gc`, and `csss check` on each backend."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from datetime import timedelta

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo

from csss_fhir import create_app
from csss_fhir.cli import cli
from csss_fhir.models import Scan, db, utcnow
from tests.factories import make_scan


def run(settings, *args: str):
    result = CliRunner().invoke(cli, args=list(args),
                                obj=ScriptInfo(create_app=lambda: create_app(settings)))
    return result.exit_code, result.output


def scan_image(settings, scan_id: str) -> bytes:
    app = create_app(settings)
    with app.app_context():
        image = db.session.get(Scan, scan_id).image
        return app.extensions["csss"].store.get(image.sha256)


def test_migrate_to_postgresql_then_serve_from_it(app, settings):
    with app.app_context():
        scan_id, _ = make_scan()
    before = scan_image(settings, scan_id)

    code, output = run(settings, "storage", "migrate", "--to", "postgresql")
    assert code == 0, output
    assert "copied 1, already there 0, failed 0" in output
    code, output = run(settings, "storage", "migrate", "--to", "postgresql")
    assert "copied 0, already there 1, failed 0" in output

    on_database = replace(settings, storage_backend="postgresql",
                          storage_dir=settings.instance_path / "nowhere")
    assert scan_image(on_database, scan_id) == before
    code, output = run(on_database, "check")
    assert "ok    storage        postgresql:" in output and "1 blob(s)" in output


def test_migrate_to_s3_and_back(app, settings, moto_server, s3_bucket):
    with app.app_context():
        make_scan()
    s3 = {"s3_bucket": s3_bucket, "s3_endpoint_url": moto_server, "s3_region": "us-east-1",
          "s3_access_key_id": "testing", "s3_secret_access_key": "testing"}
    code, output = run(replace(settings, **s3), "storage", "migrate", "--to", "s3")
    assert "copied 1, already there 0, failed 0" in output, output

    on_s3 = replace(settings, storage_backend="s3", storage_dir=settings.instance_path / "new",
                    **s3)
    code, output = run(on_s3, "check")
    assert f"ok    storage        s3: bucket '{s3_bucket}'" in output
    code, output = run(on_s3, "storage", "migrate", "--to", "file")
    assert "copied 1, already there 0, failed 0" in output, output


def test_migrate_reports_a_corrupt_blob_and_fails(app, settings):
    with app.app_context():
        scan_id, _ = make_scan()
        store = app.extensions["csss"].store
        store.path_for(db.session.get(Scan, scan_id).image.sha256).write_bytes(b"rot")
    code, output = run(settings, "storage", "migrate", "--to", "postgresql")
    assert code == 1
    assert "copied 0, already there 0, failed 1" in output
    assert f"source bytes hash to {hashlib.sha256(b'rot').hexdigest()}" in output


def test_gc_deletes_old_unreferenced_blobs_only(app, settings):
    with app.app_context():
        scan_id, _ = make_scan()
        store = app.extensions["csss"].store
        orphan, _ = store.put(b"left by a failed request")
        fresh, _ = store.put(b"stored by a request still running")
        old = (utcnow() - timedelta(days=2)).timestamp()
        os.utime(store.path_for(orphan), (old, old))
        image = db.session.get(Scan, scan_id).image.sha256
        os.utime(store.path_for(image), (old, old))

    code, output = run(settings, "storage", "gc")
    assert code == 0, output
    assert "deleted 1 unreferenced blob(s)" in output
    assert "kept 1 referenced and 1 stored within 24 h" in output
    assert not store.exists(orphan) and store.exists(fresh) and store.exists(image)


@pytest.mark.parametrize("hours", ["0", "0.5"])
def test_gc_refuses_a_grace_period_under_an_hour(settings, hours):
    code, output = run(settings, "storage", "gc", "--grace-hours", hours)
    assert code == 1 and "below the minimum of 1" in output
