"""Where jobs run: inline after the commit, on a thread in the app process, or on Celery.

All three call `tasks.run_job` with the same arguments, so a job behaves the same wherever it
runs; they differ only in who calls it and when the sweep runs.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from flask import Flask

from csss_fhir.jobs import SWEEP, tasks

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 60.0


class InlineRunner:
    """Runs each job at once, in the committing thread (tests: deterministic, no threads)."""

    name = "inline"

    def __init__(self, app: Flask) -> None:
        self.app = app

    def submit(self, job: str, key: str | None) -> None:
        """Run the job now; a failure is logged, never raised into the committing request
        (the job's row stays due, and the sweep runs it again)."""
        try:
            with self.app.app_context():
                follow_ups = tasks.run_job(self.app, job, key)
        except Exception:
            log.exception("job failed; the sweep retries it", extra={"job": job})
            return
        for follow_up in follow_ups:
            self.submit(*follow_up)

    def start(self) -> None:
        """Nothing to start."""


class ThreadRunner:
    """A queue and one daemon thread per app process, with the periodic sweep.

    Used when no broker is configured: `scripts/serve.sh` needs nothing more. The thread
    starts with the first request or job, not in `create_app`, so `csss db upgrade` and
    the other commands start none. It never exits: a failing job (the database gone) is
    logged, and the thread waits with back-off before it takes the next.
    """

    name = "thread"

    def __init__(self, app: Flask, sweep_seconds: float) -> None:
        self.app = app
        self.sweep_seconds = sweep_seconds
        self.queue: queue.Queue[tuple[str, str | None]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="csss-jobs",
                                                daemon=True)
                self._thread.start()

    def submit(self, job: str, key: str | None) -> None:
        self.queue.put((job, key))
        self.start()

    def _loop(self) -> None:
        next_sweep = time.monotonic()
        failures = 0
        while True:
            try:
                job, key = self.queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
            except queue.Empty:
                job, key = SWEEP, None
            if job == SWEEP:
                next_sweep = time.monotonic() + self.sweep_seconds
            try:
                with self.app.app_context():
                    follow_ups = tasks.run_job(self.app, job, key)
            except Exception:
                failures += 1
                delay = min(MAX_BACKOFF_SECONDS, 2.0 ** failures)
                log.exception("job failed; retrying later", extra={"job": job,
                                                                   "backoff_s": delay})
                time.sleep(delay)
                continue
            failures = 0
            for follow_up in follow_ups:
                self.queue.put(follow_up)


class CeleryRunner:
    """Publishes jobs to the Celery broker; workers (`csss worker`) run them.

    Publishing never raises: with the broker down the request still succeeds, the failure is
    logged, and the sweep (Celery beat) enqueues the work again once the broker is back.
    """

    name = "celery"

    def __init__(self, app: Flask) -> None:
        from csss_fhir.jobs.celery_app import make_celery

        self.app = app
        self.celery = make_celery(app)

    def submit(self, job: str, key: str | None) -> None:
        try:
            self.celery.send_task(f"csss.{job}", args=[key], retry=False)
        except Exception as err:
            log.warning("job not queued (broker unreachable); the sweep will retry it",
                        extra={"job": job, "error": type(err).__name__})

    def start(self) -> None:
        """Nothing to start: the workers are separate processes."""


def make_runner(app: Flask) -> InlineRunner | ThreadRunner | CeleryRunner:
    settings = app.extensions["csss"].settings
    kind = settings.jobs_runner
    if kind == "celery":
        return CeleryRunner(app)
    if kind == "thread":
        runner = ThreadRunner(app, settings.jobs_sweep_seconds)
        app.before_request(runner.start)
        return runner
    return InlineRunner(app)
