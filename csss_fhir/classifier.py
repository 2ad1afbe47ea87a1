"""The app's handle on the classifier in `ml/`: loaded once per process, on first use."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.models import ModelDevice, new_id, utcnow


class ClassifierProvider:
    """Loads `ml.infer.Classifier` lazily so that start-up and the test suite stay fast."""

    def __init__(self, model_path: str | None) -> None:
        self.model_path = model_path
        self._lock = threading.Lock()
        self._classifier: Any = None

    def get(self) -> Any:
        if self._classifier is None:
            with self._lock:
                if self._classifier is None:
                    from ml.infer import Classifier

                    self._classifier = Classifier.load(self.model_path)
        return self._classifier


def device_for(session: Session, metadata: dict[str, Any]) -> ModelDevice:
    """The Device row of this model version, created (with its first history version) on
    first use.

    Several workers classify the first scans of a new model at once: the row is inserted
    with ON CONFLICT DO NOTHING, so the losers of that race read the winner's row instead
    of failing their (unrelated) scans on the unique sha256.
    """
    sha = metadata["sha256"]
    select_device = select(ModelDevice).where(ModelDevice.sha256 == sha)
    device = session.scalar(select_device)
    if device is not None:
        return device
    now = utcnow()
    values = {"id": new_id(), "version_id": 1, "created_at": now, "updated_at": now,
              "name": str(metadata.get("name", "classifier")),
              "version": str(metadata.get("version", "unknown")), "sha256": sha,
              "model_metadata": dict(metadata)}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # RETURNING says whether this transaction inserted the row (the ORM session does not
    # pass the rowcount of this statement through).
    inserted = session.execute(
        insert(ModelDevice.__table__).values(**values)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(ModelDevice.__table__.c.id)
    ).first() is not None
    device = session.scalar(select_device)
    if inserted:
        from csss_fhir import history

        history.record(session, device)
    return device
