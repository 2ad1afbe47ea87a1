"""The app's handle on the classifier in `ml/`: loaded once per process, on first use."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.models import ModelDevice


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

    @property
    def loaded(self) -> bool:
        return self._classifier is not None


def device_for(session: Session, metadata: dict[str, Any]) -> ModelDevice:
    """The Device row of this model version, created on first use."""
    sha = metadata["sha256"]
    device = session.scalar(select(ModelDevice).where(ModelDevice.sha256 == sha))
    if device is None:
        device = ModelDevice(name=str(metadata.get("name", "classifier")),
                             version=str(metadata.get("version", "unknown")), sha256=sha,
                             model_metadata=dict(metadata))
        session.add(device)
    return device
