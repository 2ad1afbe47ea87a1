"""Where a FHIR read, a 20-entry search and an upload spend their time: pyinstrument,
in-process.

    .venv/bin/python benchmarks/profile_requests.py                       # SQLite
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/profile_requests.py  # PostgreSQL

Seeds the data benchmarks/load.py serves (a patient with 20 scans, a doctor), then runs
`--requests` of each case through the Flask test client with pyinstrument on: reads of
`GET /fhir/Patient/<id>`, `GET /fhir/ImagingStudy?patient=` and `$upload` of a PNG (the AI
runs on the app's job thread, which is not profiled). Prints the profile of each (frames
above `--min-percent` of the time), milliseconds and SQL statements per request. Needs
pyinstrument (a dev tool: pip install pyinstrument).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from dataclasses import replace
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
    parser.add_argument("--cases", default="read,search,upload")
    args = parser.parse_args()
    from load import in_process_settings, seed

    from csss_fhir import create_app
    from csss_fhir.models import db

    with in_process_settings("csss-profile-") as (kind, settings):
        data = seed(settings)
        app = create_app(replace(settings, jobs_mode="thread"))
        client = app.test_client()
        headers = factories.auth_headers(client, app, *data["doctor"], "doctor")
        headers["Accept"] = "application/fhir+json"
        uploader = factories.auth_headers(client, app, *data["patient"], "patient")
        uploader["Accept"] = "application/fhir+json"
        image = factories.xray_png(seed=99)
        statements = []
        with app.app_context():
            event.listen(db.engine, "before_cursor_execute",
                         lambda *a, **k: statements.append(1))
        cases = {"read": f"/fhir/Patient/{data['patient_id']}",
                 "search": f"/fhir/ImagingStudy?patient={data['patient_id']}",
                 "upload": "/fhir/ImagingStudy/$upload"}

        def send(name: str, path: str):
            if name != "upload":
                return client.get(path, headers=headers)
            return client.post(path, headers=uploader, data={
                "file": (io.BytesIO(image), "scan.png", "image/png")})

        for name, path in cases.items():
            if name not in args.cases.split(","):
                continue
            for _ in range(20):  # warm up: pools, caches, lazy imports
                assert send(name, path).status_code in (200, 201)
            statements.clear()
            profiler = Profiler(interval=0.0005)
            started = time.perf_counter()
            profiler.start()
            for _ in range(args.requests):
                response = send(name, path)
                assert response.status_code in (200, 201), response.status_code
            profiler.stop()
            elapsed = time.perf_counter() - started
            print(f"=== {kind} {name}: {elapsed / args.requests * 1000:.2f} ms/request "
                  f"(profiled), {len(statements) / args.requests:.1f} SQL statements/"
                  f"request, load average (1 min) {os.getloadavg()[0]:.2f}")
            print(profiler.output_text(show_all=False, color=False, unicode=True,
                                       flat=False, time="percent_of_total",
                                       processor_options={
                                           "filter_threshold": args.min_percent / 100}))


if __name__ == "__main__":
    main()
