"""Load benchmark: wrk against gunicorn on loopback, SQLite and PostgreSQL, 1 and 4 workers.

    .venv/bin/python benchmarks/load.py                       # SQLite only
    bash scripts/with-postgres.sh .venv/bin/python benchmarks/load.py   # SQLite and PostgreSQL

Needs `wrk` (Debian: apt-get install wrk). For each database and worker count it starts
`gunicorn -c docker/gunicorn.conf.py wsgi:app` on a free 127.0.0.1 port with fresh data, then
runs wrk (1 thread, --connections, --seconds each; all traffic to 127.0.0.1) on:

- ceiling: GET /doc/<id> of benchmarks/ceiling.py, bare Flask + SQLAlchemy reading the same
  Patient JSON by primary key from the same database, under the same gunicorn settings (a
  server of its own, started and stopped before the service's): what the framework can do
- read:    GET /fhir/Patient/<id> (doctor token)
- search:  GET /fhir/ImagingStudy?patient=<id> (a Bundle of 20 studies)
- upload:  POST $upload (a 256x256 PNG, patient token); the AI runs on upload as a job (here
  the in-process job thread of each gunicorn worker: no broker), so the note says how long
  after the last upload every scan was classified (the AI keeping up, or not).

It prints requests/s, each case as a fraction of the ceiling, p50/p95/p99 latency and p99/p50
per case and the 1-minute load average of the machine, and fails if any response was not 2xx.
"cpu ms" is the CPU time the server used per request (gunicorn's processes and, on
PostgreSQL, the database's backends), and "by cpu" the ceiling's CPU per request over the
case's: the fraction of the ceiling the case would reach where CPU is what runs out. On a
machine shared with other work, requests/s follow the load of the moment; CPU per request
much less so.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import requests  # noqa: E402

from tests import factories  # noqa: E402

LUA_COMMON = r"""
local counts = {}
done = function(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  local extra, odd = {}, ""
  for _, t in ipairs(threads_list) do
    for _, key in ipairs({"uploads", "classifies"}) do
      extra[key] = (extra[key] or 0) + (t:get(key) or 0)
    end
    odd = odd .. (t:get("odd_statuses") or "")
  end
  io.write(string.format(
    'WRKJSON {"requests": %d, "seconds": %.3f, "errors": %d, "p50": %.3f, "p95": %.3f,'
    .. ' "p99": %.3f, "uploads": %d, "classifies": %d, "odd_statuses": "%s"}\n',
    summary.requests, summary.duration / 1e6, bad, latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    extra.uploads or 0, extra.classifies or 0, odd))
end
odd_statuses = ""
note_status = function(status)
  if status >= 300 then odd_statuses = odd_statuses .. status .. " " end
end
threads_list = {}
setup = function(thread) table.insert(threads_list, thread) end
"""

LUA_GET = LUA_COMMON + r"""
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Accept"] = "application/fhir+json"
response = function(status, headers, body) note_status(status) end
"""

LUA_UPLOAD = LUA_COMMON + r"""
local boundary = "csssbenchboundary"
local body = nil
uploads, classifies = 0, 0
init = function(args)
  local f = assert(io.open(os.getenv("BENCH_IMAGE"), "rb"))
  local png = f:read("*all")
  f:close()
  body = "--" .. boundary .. "\r\n"
    .. 'Content-Disposition: form-data; name="file"; filename="scan.png"\r\n'
    .. "Content-Type: image/png\r\n\r\n" .. png .. "\r\n--" .. boundary .. "--\r\n"
end
request = function()
  return wrk.format("POST", "/fhir/ImagingStudy/$upload", {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Accept"] = "application/fhir+json",
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end
response = function(status, headers, body)
  note_status(status)
  if status == 201 then uploads = uploads + 1 end
end
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Database:
    """A fresh migrated database: a SQLite file, or one on the CSSS_TEST_DATABASE_URL server."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.name = None
        if kind == "sqlite":
            self.url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            from sqlalchemy.engine import make_url

            self.name = f"csss_bench_{secrets.token_hex(4)}"
            self._admin(f'CREATE DATABASE "{self.name}"')
            server = make_url(os.environ["CSSS_TEST_DATABASE_URL"])
            self.url = server.set(database=self.name).render_as_string(hide_password=False)

    @staticmethod
    def _admin(statement: str) -> None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        engine = create_engine(os.environ["CSSS_TEST_DATABASE_URL"],
                               isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with engine.connect() as connection:
            connection.execute(text(statement))
        engine.dispose()

    def drop(self) -> None:
        if self.name:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@contextmanager
def in_process_settings(prefix: str) -> Iterator[tuple[str, object]]:
    """(kind, settings) for an in-process benchmark: a fresh database of the kind the
    environment names (PostgreSQL under scripts/with-postgres.sh, else SQLite) in a temporary
    folder, dropped afterwards (WITH (FORCE): a job thread may still hold a connection)."""
    kind = "postgresql" if os.environ.get("CSSS_TEST_DATABASE_URL") else "sqlite"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        database = Database(kind, Path(tmp))
        try:
            yield kind, factories.settings_for(Path(tmp) / "instance", database.url)
        finally:
            database.drop()


def seed(settings) -> dict:
    """Migrate, then a patient with 20 scans, a doctor; returns ids and credentials."""
    from csss_fhir import create_app, migrate
    from csss_fhir.models import db

    app = create_app(settings)
    migrate.upgrade(app)
    with app.app_context():
        patient, patient_password = factories.make_user("patient")
        doctor, doctor_password = factories.make_user("doctor")
        for n in range(20):
            factories.make_scan("PENDING_AI", patient=patient, image=factories.xray_png(seed=n))
        data = {"patient_id": patient.patient_id, "patient": (patient.email, patient_password),
                "doctor": (doctor.email, doctor_password)}
        db.session.remove()
        db.engine.dispose()
    return data


def token(url: str, email: str, password: str) -> str:
    response = requests.post(f"{url}/auth/token", json={"username": email, "password": password},
                             timeout=30)
    response.raise_for_status()
    return response.json()["access_token"]


def start_gunicorn(settings, workdir: Path, workers: int, target: str = "wsgi:app",
                   extra_env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update({
        "CSSS_ENV": "testing", "CSSS_INSTANCE_PATH": str(settings.instance_path),
        "SECRET_KEY": settings.secret_key, "JWT_SECRET_KEY": settings.jwt_secret_key,
        "DATABASE_URL": settings.database_url, "BCRYPT_ROUNDS": "4",
        "GUNICORN_ACCESSLOG": "/dev/null", "GUNICORN_LOGLEVEL": "warning",
        "TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {}),
    })
    log = (workdir / "gunicorn.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker" / "gunicorn.conf.py"),
         "--pythonpath", f"{ROOT},{ROOT / 'benchmarks'}", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), target],
        cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((workdir / "gunicorn.log").read_text()[-3000:])
        try:
            if requests.get(f"{url}/readyz", timeout=10).status_code == 200:
                return process, url
        except requests.RequestException:  # not listening yet, or busy loading
            pass
        time.sleep(0.3)
    process.kill()
    raise SystemExit("gunicorn did not become ready")


def stop_gunicorn(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def ceiling(settings, workdir: Path, workers: int, doc_id: str, body: str, seconds: int,
            connections: int) -> dict:
    """Store `body` (the Patient JSON the service serves) in benchmarks/ceiling.py's table,
    serve it with bare Flask + SQLAlchemy under the same gunicorn settings, measure, stop."""
    import ceiling as bare
    from sqlalchemy.engine import make_url

    bare.store(settings.database_url, doc_id, body)
    process, bare_url = start_gunicorn(settings, workdir, workers, "ceiling:create_app()",
                                       {"GUNICORN_PRELOAD_MODEL": "0"})
    try:
        return measured(process, make_url(settings.database_url).database
                        if not settings.database_url.startswith("sqlite") else None,
                        f"{bare_url}/doc/{doc_id}", LUA_GET, {"BENCH_TOKEN": "-"},
                        seconds, connections, workdir)
    finally:
        stop_gunicorn(process)


def wait_for_ai(settings, limit: float = 300) -> float | None:
    """Seconds until no scan waits for the AI any more (None: still waiting after `limit`)."""
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.pool import NullPool

    from csss_fhir.models import Task

    engine = create_engine(settings.database_url, poolclass=NullPool)
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit:
            with engine.connect() as connection:
                waiting = connection.scalar(select(func.count()).select_from(Task.__table__)
                                            .where(Task.state == "PENDING_AI"))
            if not waiting:
                return time.monotonic() - started
            time.sleep(0.5)
        return None
    finally:
        engine.dispose()


def _ticks(pid: int | str, *, children: bool = False) -> int:
    """CPU clock ticks a process used (user + system), with its reaped children's."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0  # gone meanwhile
    return sum(int(f) for f in fields[11:15 if children else 13])


def server_cpu(server_pid: int, database: str | None) -> float:
    """CPU seconds used so far by the gunicorn tree and, on PostgreSQL, the backends of
    `database` (and those that exited, through their postmaster): what a request costs
    whatever else the machine runs, unlike requests/s on a shared machine."""
    ticks = _ticks(server_pid, children=True)
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children")
    for child in (children.read_text().split() if children.exists() else []):
        ticks += _ticks(child)
    postmasters = set()
    for proc in Path("/proc").iterdir() if database else ():
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if command.startswith(b"postgres: ") and f" {database} ".encode() in command:
            ticks += _ticks(proc.name)
            stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            postmasters.add(stat[1])
    ticks += sum(_ticks(pid, children=True) - _ticks(pid) for pid in postmasters)
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(process: subprocess.Popen, database: str | None, url: str, script: str,
             env: dict, seconds: int, connections: int, workdir: Path) -> dict:
    """wrk's figures, with the server's CPU milliseconds per request."""
    before = server_cpu(process.pid, database)
    figures = wrk(url, script, env, seconds, connections, workdir)
    figures["cpu_ms"] = (server_cpu(process.pid, database) - before) * 1000 / max(
        1, figures["requests"])
    return figures


def wrk(url: str, script: str, env: dict, seconds: int, connections: int,
        workdir: Path) -> dict:
    path = workdir / "bench.lua"
    path.write_text(script)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s", "-s", str(path),
         url], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=seconds + 90, check=True)
    line = next(x for x in result.stdout.splitlines() if x.startswith("WRKJSON "))
    return json.loads(line.removeprefix("WRKJSON "))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per case (max 60)")
    parser.add_argument("--connections", type=int, default=8, help="wrk connections (max 64)")
    parser.add_argument("--workers", default="1,4", help="gunicorn worker counts")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="which databases (postgresql needs scripts/with-postgres.sh)")
    parser.add_argument("--cases", default="read,search,upload",
                        help="which of read, search, upload (the ceiling always runs)")
    args = parser.parse_args()
    seconds, connections = min(args.seconds, 60), min(args.connections, 64)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    kinds = [kind for kind in ("sqlite", "postgresql") if kind in args.databases.split(",")]
    if "postgresql" in kinds and not os.environ.get("CSSS_TEST_DATABASE_URL"):
        kinds.remove("postgresql")
        print("PostgreSQL skipped: run under scripts/with-postgres.sh", file=sys.stderr)

    print(f"wrk 1 thread, {connections} connections, {seconds} s per case; "
          f"{os.cpu_count()} CPUs; load average (1 min) at the start: {os.getloadavg()[0]:.2f}")
    print(f"{'database':<11}{'workers':>8}  {'case':<9}{'req/s':>8}{'ceiling':>9}{'p50 ms':>9}"
          f"{'p95 ms':>9}{'p99 ms':>9}{'p99/p50':>9}{'cpu ms':>8}{'by cpu':>8}  note")
    failures = 0
    for kind in kinds:
        for workers in [int(w) for w in args.workers.split(",")]:
            with tempfile.TemporaryDirectory(prefix="csss-load-") as tmp:
                workdir = Path(tmp)
                database = Database(kind, workdir)
                settings = factories.settings_for(workdir / "instance", database.url)
                process = None
                try:
                    data = seed(settings)
                    process, url = start_gunicorn(settings, workdir, workers)
                    doctor = token(url, *data["doctor"])
                    patient = token(url, *data["patient"])
                    image = workdir / "scan.png"
                    image.write_bytes(factories.xray_png(seed=99))
                    body = requests.get(f"{url}/fhir/Patient/{data['patient_id']}", timeout=30,
                                        headers={"Authorization": f"Bearer {doctor}"}).text
                    # The ceiling in its own server (the service's stopped meanwhile: the two
                    # never share the CPUs), then the service's cases.
                    stop_gunicorn(process)
                    process = None
                    results = [("ceiling", ceiling(settings, workdir, workers,
                                                   data["patient_id"], body, seconds,
                                                   connections))]
                    process, url = start_gunicorn(settings, workdir, workers)
                    top = results[0][1]["requests"] / results[0][1]["seconds"]
                    top_cpu = results[0][1]["cpu_ms"]
                    cases = (
                        ("read", f"{url}/fhir/Patient/{data['patient_id']}", LUA_GET,
                         {"BENCH_TOKEN": doctor}),
                        ("search", f"{url}/fhir/ImagingStudy?patient={data['patient_id']}",
                         LUA_GET, {"BENCH_TOKEN": doctor}),
                        ("upload", url, LUA_UPLOAD,
                         {"BENCH_TOKEN": patient, "BENCH_IMAGE": str(image)}),
                    )
                    for name, target, script, env in cases:
                        if name not in args.cases.split(","):
                            continue
                        results.append((name, measured(process, database.name, target,
                                                       script, env, seconds, connections,
                                                       workdir)))
                        if name == "upload":
                            results[-1][1]["ai_done"] = wait_for_ai(settings)
                    for name, figures in results:
                        rps = figures["requests"] / figures["seconds"]
                        note = ""
                        if name == "upload":
                            done = figures["ai_done"]
                            note = (f"{figures['uploads'] / figures['seconds']:.1f} scans/s "
                                    "accepted; AI " + (f"done {done:.0f} s after the last"
                                                       if done is not None else
                                                       "NOT done 300 s after the last"))
                        if figures["errors"]:
                            failures += figures["errors"]
                            note += (f" {figures['errors']} non-2xx/errors "
                                     f"({figures['odd_statuses'].strip() or 'socket'})!")
                            log = (workdir / "gunicorn.log").read_text().splitlines()
                            print("\n".join(x for x in log if "ERROR" in x or "Error" in x
                                            or "Traceback" in x)[-3000:], file=sys.stderr)
                        ratio = figures["p99"] / figures["p50"] if figures["p50"] else 0.0
                        print(f"{kind:<11}{workers:>8}  {name:<9}{rps:>8.1f}{rps / top:>9.0%}"
                              f"{figures['p50']:>9.1f}{figures['p95']:>9.1f}"
                              f"{figures['p99']:>9.1f}{ratio:>9.1f}{figures['cpu_ms']:>8.2f}"
                              f"{top_cpu / figures['cpu_ms']:>8.0%}  {note}".rstrip(),
                              flush=True)
                finally:
                    if process is not None:
                        stop_gunicorn(process)
                    database.drop()
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    if failures:
        raise SystemExit(f"{failures} responses were not 2xx (see the gunicorn log)")


if __name__ == "__main__":
    main()
