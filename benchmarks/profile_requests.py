"""Where a FHIR read and a 20-entry search spend their time: pyinstrument, in-process.

    .venv/bin/python benchmarks/profile_reads.py                       # SQLite
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/profile_reads.py  # PostgreSQL

Seeds the data benchmarks/load.py serves (a patient with 20 scans, a doctor), then runs
`--requests` reads of `GET /fhir/Patient/<id>` and as many `GET /fhir/ImagingStudy?patient=`
through the Flask test client with pyinstrument on, and prints the profile of each (the
frames above `--min-percent` of the time), the milliseconds per request and the SQL
statements per request. Needs pyinstrument (a dev tool: pip install pyinstrument).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pyinstrument import Profiler  # noqa: E402
from sqlalchemy import event  # noqa: E402

from tests import factories  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="per case")
    parser.add_argument("--min-percent", type=float, default=2.0,
                        help="hide frames under this share of the time")
    args = parser.parse_args()
    from load import Database, seed

    from csss_fhir import create_app
    from csss_fhir.models import db

    kind = "postgresql" if os.environ.get("CSSS_TEST_DATABASE_URL") else "sqlite"
    with tempfile.TemporaryDirectory(prefix="csss-profile-") as tmp:
        database = Database(kind, Path(tmp))
        try:
            settings = factories.settings_for(Path(tmp) / "instance", database.url)
            data = seed(settings)
            app = create_app(settings)
            client = app.test_client()
            headers = factories.auth_headers(client, app, *data["doctor"], "doctor")
            headers["Accept"] = "application/fhir+json"
            statements = []
            with app.app_context():
                event.listen(db.engine, "before_cursor_execute",
                             lambda *a, **k: statements.append(1))
            cases = {"read": f"/fhir/Patient/{data['patient_id']}",
                     "search": f"/fhir/ImagingStudy?patient={data['patient_id']}"}
            for name, path in cases.items():
                for _ in range(20):  # warm up: pools, caches, lazy imports
                    assert client.get(path, headers=headers).status_code == 200
                statements.clear()
                profiler = Profiler(interval=0.0005)
                started = time.perf_counter()
                profiler.start()
                for _ in range(args.requests):
                    response = client.get(path, headers=headers)
                    assert response.status_code == 200, response.status_code
                profiler.stop()
                elapsed = time.perf_counter() - started
                print(f"=== {kind} {name}: {elapsed / args.requests * 1000:.2f} ms/request "
                      f"(profiled), {len(statements) / args.requests:.1f} SQL statements/"
                      f"request, load average (1 min) {os.getloadavg()[0]:.2f}")
                print(profiler.output_text(show_all=False, color=False, unicode=True,
                                           flat=False, time="percent_of_total",
                                           processor_options={
                                               "filter_threshold": args.min_percent / 100}))
        finally:
            from sqlalchemy.orm import close_all_sessions

            close_all_sessions()
            database.drop()


if __name__ == "__main__":
    main()
