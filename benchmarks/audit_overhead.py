"""What the audit trail costs a FHIR read and search (SQLite, Flask test client).

Prints milliseconds per request with the audit hook and with it removed, for a read by id
and a 20-entry search (20 patients: 20 audit rows).
Run: .venv/bin/python benchmarks/audit_overhead.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csss_fhir import create_app, migrate
from csss_fhir.security import audit
from tests import factories

REQUESTS = 200


def timed(client, path: str, headers: dict[str, str]) -> float:
    samples = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        response = client.get(path, headers=headers)
        samples.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples) * 1000


def main() -> None:
    root = Path(tempfile.mkdtemp())
    app = create_app(factories.settings_for(root / "instance", f"sqlite:///{root}/bench.db"))
    migrate.upgrade(app)
    with app.app_context():
        scans = [factories.make_scan("PENDING_AI")[0] for _ in range(20)]
        doctor, password = factories.make_user("doctor")
        email = doctor.email
    client = app.test_client()
    headers = factories.auth_headers(client, app, email, password, "doctor")
    paths = {"read": f"/fhir/ImagingStudy/{scans[0]}", "search": "/fhir/ImagingStudy?_count=20"}
    with_audit = {name: timed(client, path, headers) for name, path in paths.items()}
    app.after_request_funcs[None].remove(audit.audit_fhir_request)
    without = {name: timed(client, path, headers) for name, path in paths.items()}
    for name in paths:
        print(f"{name:>6}: {with_audit[name]:6.2f} ms with audit, {without[name]:6.2f} ms "
              f"without (median of {REQUESTS})")


if __name__ == "__main__":
    main()
