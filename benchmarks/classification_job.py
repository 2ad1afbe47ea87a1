"""Where one classification job spends its CPU: decode, model, assessability, database.

    .venv/bin/python benchmarks/classification_job.py                       # SQLite
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/classification_job.py

Seeds `--scans` scans waiting for the AI (256×256 PNGs, as benchmarks/load.py uploads),
then prints the CPU milliseconds per scan (this process only; on PostgreSQL the server's
backend adds its own) of each step of the serving path, run on the same images the jobs
classify, and of whole jobs: a `classify_scan` job per scan (as each upload queues one),
first with batches of one scan (`tasks.AI_BATCH` = 1: one claim, predict, write and release
per scan), then of `--batch` (the later jobs then find their scan taken: a cheap no-op). "db"
is the unbatched job's CPU less `predict`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests import factories  # noqa: E402


def cpu_ms(step: Callable[[], object], repeat: int) -> float:
    """CPU milliseconds per call of `step` (this process, all its threads)."""
    started = time.process_time()
    for _ in range(repeat):
        step()
    return (time.process_time() - started) * 1000 / repeat


def seed_pending(settings, count: int) -> None:
    from csss_fhir import create_app, migrate
    from csss_fhir.models import db

    app = create_app(settings)
    migrate.upgrade(app)
    with app.app_context():
        patient, _ = factories.make_user("patient")
        for n in range(count):
            factories.make_scan("PENDING_AI", patient=patient, image=factories.xray_png(seed=n))
        db.session.remove()
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=64, help="scans per job run")
    parser.add_argument("--batch", type=int, default=16, help="scans per batched job")
    args = parser.parse_args()
    from load import in_process_settings
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from csss_fhir import create_app
    from csss_fhir.jobs import tasks
    from csss_fhir.models import AiJob, Scan, db
    from ml.preprocessing import decoded_pixels, prepare_rgb, scale_to_unit

    with in_process_settings("csss-classify-") as (kind, settings):
        print(f"{kind}; load average (1 min) at the start: {os.getloadavg()[0]:.2f}")
        seed_pending(settings, 2 * args.scans)
        app = create_app(settings)
        with app.app_context():
            svc = app.extensions["csss"]
            classifier = svc.classifier.get()
            scan_ids = list(db.session.scalars(select(AiJob.scan_id).order_by(AiJob.due_at)))
            image = svc.store.get(db.session.get(Scan, scan_ids[0]).image.sha256)
            db.session.remove()
            pixels = decoded_pixels(image)
            rgb = prepare_rgb(pixels, classifier.input_size)
            batch = scale_to_unit(rgb)[None]
            outputs = classifier._runner.run(batch)
            repeat = args.scans
            steps = {
                "decode": cpu_ms(lambda: decoded_pixels(image), repeat),
                "resize": cpu_ms(lambda: prepare_rgb(pixels, classifier.input_size),
                                 repeat),
                "model": cpu_ms(lambda: classifier._runner.run(batch), repeat),
                "assessability": cpu_ms(
                    lambda: classifier.limits.judge(pixels.shape, rgb, outputs[1]),
                    repeat) if classifier.limits else 0.0,
                "predict": cpu_ms(lambda: classifier.predict(image), repeat),
            }
            single, batched = scan_ids[:args.scans], scan_ids[args.scans:]

            def jobs(scan_ids: list[str], batch: int) -> None:
                tasks.AI_BATCH = batch
                for scan_id in scan_ids:
                    with Session(db.engine) as session:
                        tasks.classify_scan(session, svc, scan_id)

            steps["job, batch 1"] = cpu_ms(lambda: jobs(single, 1), 1) / len(single)
            steps["db"] = steps["job, batch 1"] - steps["predict"]
            steps[f"job, batch {args.batch}"] = cpu_ms(lambda: jobs(batched, args.batch),
                                                       1) / len(batched)
        for name, value in steps.items():
            print(f"{name:<16}{value:>8.2f} ms CPU per scan")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
