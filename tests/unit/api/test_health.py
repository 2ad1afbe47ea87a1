"""Operations endpoints."""

from __future__ import annotations


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "model": "ok"}


def test_security_headers_and_no_cors_for_unknown_origins(client):
    response = client.get("/fhir/metadata", headers={"Origin": "https://evil.example"})
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Access-Control-Allow-Origin" not in response.headers


def test_readyz_answers_503_within_two_seconds_when_the_database_never_answers(tmp_path):
    """A PostgreSQL server that accepts connections and then says nothing (as a frozen one
    does): /readyz must not hang with it."""
    import socket
    import time

    from csss_fhir import create_app
    from tests.factories import settings_for

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        app = create_app(settings_for(
            tmp_path / "instance", f"postgresql+psycopg://csss:pw@127.0.0.1:{port}/csss",
            db_connect_timeout_seconds=30))
        client = app.test_client()
        for _ in range(2):  # the second call finds the first probe still hanging
            started = time.monotonic()
            response = client.get("/readyz")
            assert time.monotonic() - started < 2.0
            assert response.status_code == 503
            assert response.get_json()["checks"]["database"] != "ok"
