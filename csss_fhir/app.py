"""The application factory."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask
from flask_jwt_extended import JWTManager
from sqlalchemy import event
from sqlalchemy.engine import Engine

from csss_fhir import security
from csss_fhir.classifier import ClassifierProvider
from csss_fhir.errors import ConfigurationError
from csss_fhir.extensions import Services
from csss_fhir.mail.backends import make_backend
from csss_fhir.models import db
from csss_fhir.settings import Settings, load_environment
from csss_fhir.storage import open_store

ROOT = Path(__file__).resolve().parent.parent
MULTIPART_OVERHEAD = 1024 * 1024


class ProductionFlask(Flask):
    """Flask whose debug mode, and so the Werkzeug debugger, cannot be switched on.

    `flask run --debug` (or FLASK_DEBUG=1) sets `app.debug` when it loads the app: in
    production that now stops the command before any server starts.
    """

    @property
    def debug(self) -> bool:
        return bool(self.config["DEBUG"])

    @debug.setter
    def debug(self, value: bool) -> None:
        if value:
            raise ConfigurationError("debug mode is refused when CSSS_ENV=production")
        Flask.debug.fset(self, value)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment and `.env`)."""
    settings = settings or Settings.from_environ(load_environment())
    settings.validate()
    app = (ProductionFlask if settings.production else Flask)(
        "csss_fhir",
        instance_path=str(settings.instance_path.resolve()) if settings.instance_path else None,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    settings = settings.with_generated_secrets(instance)
    _configure_logging(app)

    database_url = settings.database_url or f"sqlite:///{instance / 'csss.db'}"
    app.config.update(
        SECRET_KEY=settings.secret_key,
        JWT_SECRET_KEY=settings.jwt_secret_key,
        JWT_ALGORITHM="HS256",
        # Bearer headers for the API; an HttpOnly SameSite cookie for the web UI (web/session.py),
        # whose POSTs must carry the token's CSRF value: a cookie alone changes nothing.
        JWT_TOKEN_LOCATION=["headers", "cookies"],
        JWT_COOKIE_SECURE=settings.production,
        JWT_COOKIE_SAMESITE="Lax",
        JWT_COOKIE_CSRF_PROTECT=True,
        JWT_CSRF_CHECK_FORM=True,
        JWT_CSRF_IN_COOKIES=False,
        JWT_SESSION_COOKIE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        SQLALCHEMY_DATABASE_URI=database_url,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(database_url, settings),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes + MULTIPART_OVERHEAD,
        JSON_SORT_KEYS=False,
        DEBUG=False if settings.production else app.config.get("DEBUG", False),
        TESTING=settings.env == "testing",
    )
    app.config.update(dict(settings.extra))
    if settings.trusted_proxy_hops:
        # Behind a reverse proxy every request comes from the proxy: take the client address
        # and scheme from the headers the trusted proxies set (never from the client's own).
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)

    db.init_app(app)
    JWTManager(app)
    with app.app_context():
        store = open_store(settings, instance, engine=lambda: db.engine)
    app.extensions["csss"] = Services(
        settings=settings,
        instance_path=instance,
        store=store,
        mail=make_backend(settings, instance),
        classifier=ClassifierProvider(settings.model_path),
    )

    from csss_fhir import api

    api.init_app(app)
    from csss_fhir import dicomweb

    dicomweb.init_app(app)
    from csss_fhir import web

    web.init_app(app)
    security.init_app(app, settings)
    from csss_fhir import jobs

    jobs.init_app(app)
    return app


def _engine_options(url: str, settings: Settings) -> dict:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15, "check_same_thread": False}}
    # Every database call has an upper bound: connecting (DB_CONNECT_TIMEOUT), one statement
    # (DB_STATEMENT_TIMEOUT_MS, enforced by the server), and a dead peer on the network
    # (keepalives; tcp_user_timeout for unacknowledged data).
    return {"pool_pre_ping": True, "pool_size": settings.db_pool_size,
            "max_overflow": settings.db_max_overflow,
            "pool_timeout": settings.db_pool_timeout_seconds,
            "pool_recycle": 1800,  # below typical firewall / pgbouncer idle cut-offs
            "connect_args": {
                "connect_timeout": settings.db_connect_timeout_seconds,
                "application_name": "csss-fhir",
                "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
                "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3,
                "tcp_user_timeout": settings.db_statement_timeout_ms,
            }}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: enforce foreign keys; WAL so readers never wait for the one writer."""
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _configure_logging(app: Flask) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        # Alembic announces each of its plugins at INFO on every `csss db upgrade`.
        logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
