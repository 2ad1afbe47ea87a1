"""gunicorn configuration: `gunicorn -c docker/gunicorn.conf.py wsgi:app`.

Every value can be overridden with an environment variable (GUNICORN_*, PORT). gunicorn reads
this file, not the service: csss_fhir/settings.py stays the only reader of the service's own
variables.

- Workers: processes (the classifier and the GIL make CPU-bound inference per-process);
  threads: requests waiting on the database, SMTP or disk overlap inside a worker.
- The model is loaded once per worker, right after the worker has loaded the app
  (`post_worker_init`), so no request pays for it and no request loads it again. It is not
  loaded in the master before forking: LiteRT interpreters are not fork-safe.
- Shutdown: on SIGTERM gunicorn stops accepting, lets in-flight requests finish for up to
  `graceful_timeout` seconds, then exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


_cpus = multiprocessing.cpu_count()

bind = os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{_int('PORT', 8000)}"
# Inference and PDF rendering are CPU-bound: about one process per core (plus one to cover
# I/O waits), capped so that a large host does not load the model 64 times.
workers = _int("GUNICORN_WORKERS", min(_cpus + 1, 8))
worker_class = "gthread"
threads = _int("GUNICORN_THREADS", 4)
# A classify request runs the model on a possibly large image; an approve renders a PDF and
# sends an e-mail. 120 s leaves ample room on a slow CPU; a worker silent for longer is stuck.
timeout = _int("GUNICORN_TIMEOUT", 120)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then (jitter so they do not all restart at once): bounds the
# damage of any slow leak in native libraries.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 500)
preload_app = False  # each worker builds its own app, engine pool and model
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL") or "info"
# The access log shows the path but never the query string (search parameters can name a
# patient) nor any header.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
# gunicorn >= 27 opens a control socket in $HOME by default: nothing here uses it, and two
# servers of one user would fight over the one path.
control_socket_disable = True
# Keep heartbeat files off a possibly slow disk-backed /tmp (Docker).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None


def post_worker_init(worker: object) -> None:
    """Load the classifier once in this worker before it takes requests."""
    if os.environ.get("GUNICORN_PRELOAD_MODEL", "1") == "0":
        return  # lazily on first use instead
    services = worker.wsgi.extensions["csss"]
    try:
        services.classifier.get()
    except Exception:
        logging.getLogger("gunicorn.error").exception(
            "worker %s could not load the model; /readyz will say so", worker.pid)
    else:
        logging.getLogger("gunicorn.error").info("worker %s loaded the model", worker.pid)
