"""csss_fhir.classifier: the process's one classifier, loaded on first use."""

from __future__ import annotations

import threading

import pytest

from csss_fhir.classifier import ClassifierProvider
from ml.infer import DEMO_MODEL
from ml.runtime import ModelLoadError


def test_a_missing_model_fails_on_first_use_not_at_start_up(tmp_path):
    provider = ClassifierProvider(str(tmp_path / "none.tflite"))
    with pytest.raises(ModelLoadError):
        provider.get()


def test_threads_asking_at_once_share_one_loaded_classifier():
    provider = ClassifierProvider(str(DEMO_MODEL))
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(provider.get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 4 and all(classifier is got[0] for classifier in got)
    assert provider.get() is got[0]
