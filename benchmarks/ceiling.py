"""The ceiling for benchmarks/load.py: what bare Flask + SQLAlchemy serve on the same machine.

One route, `GET /doc/<id>`: a primary-key read of a stored JSON document (the service's own
Patient resource, copied into `ceiling_document` by load.py), returned as it is stored. No
authentication, no audit, no rendering: every FHIR case is measured as a fraction of this,
served by the same gunicorn settings (docker/gunicorn.conf.py) against the same database:

    DATABASE_URL=... gunicorn -c docker/gunicorn.conf.py --pythonpath benchmarks \
        'ceiling:create_app()'      # with GUNICORN_PRELOAD_MODEL=0: there is no model
"""

from __future__ import annotations

import os

from flask import Flask, Response
from sqlalchemy import String, Text, create_engine
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Document(Base):
    __tablename__ = "ceiling_document"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    body: Mapped[str] = mapped_column(Text, nullable=False)


def engine_for(url: str) -> Engine:
    return create_engine(url, pool_pre_ping=True)


def store(url: str, doc_id: str, body: str) -> None:
    """Create the table and store one document (load.py, before the server starts)."""
    engine = engine_for(url)
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.merge(Document(id=doc_id, body=body))
        session.commit()
    engine.dispose()


def create_app() -> Flask:
    engine = engine_for(os.environ["DATABASE_URL"])
    app = Flask(__name__)

    @app.get("/doc/<doc_id>")
    def read(doc_id: str) -> Response:
        with Session(engine) as session:
            document = session.get(Document, doc_id)
            if document is None:
                return Response(status=404)
            return Response(document.body, mimetype="application/fhir+json")

    @app.get("/readyz")
    def ready() -> Response:
        return Response("ok", mimetype="text/plain")

    return app
