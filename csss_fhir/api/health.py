"""Liveness and readiness probes.

`/readyz` answers within READY_TIMEOUT_SECONDS whatever the database does: the check runs on
a probe thread, and a database that does not answer in time (stopped, frozen, unreachable)
is reported as such with a 503. While a probe still hangs, later calls answer 503 at once
instead of piling up threads.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.engine import Engine

from csss_fhir.extensions import services
from csss_fhir.models import db

bp = Blueprint("health", __name__)

READY_TIMEOUT_SECONDS = 1.5
_probe_lock = threading.Lock()
_probes: dict[int, Future] = {}  # engine id -> the probe still running, if any


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    checks = {"database": _database_answers(db.engine)}
    try:
        services().classifier.get()
        checks["model"] = "ok"
    except Exception:
        checks["model"] = "not loaded"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), (
        200 if ready else 503)


def _database_answers(engine: Engine) -> str:
    """"ok", "unreachable", or "no answer within N s" (the probe keeps running alone)."""
    with _probe_lock:
        probe = _probes.get(id(engine))
        if probe is not None and not probe.done():
            return "still not answering"
        probe = Future()
        _probes[id(engine)] = probe
    threading.Thread(target=_probe, args=(engine, probe), name="csss-readyz",
                     daemon=True).start()
    try:
        return "ok" if probe.result(timeout=READY_TIMEOUT_SECONDS) else "unreachable"
    except FutureTimeout:
        return f"no answer within {READY_TIMEOUT_SECONDS:g} s"


def _probe(engine: Engine, probe: Future) -> None:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        probe.set_result(False)
    else:
        probe.set_result(True)
