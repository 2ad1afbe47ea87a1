"""ml.infer: the decision rule, loading (demo model, MODEL_PATH, cache) and serving."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import FrozenInstanceError
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.assessability import REASONS
from ml.gradcam import overlay_png
from ml.infer import (
    DEMO_MODEL,
    NOT_ASSESSABLE,
    Classifier,
    ImageDecodeError,
    ModelLoadError,
    Prediction,
    decide,
)

from .conftest import RADIOGRAPHS, make_image

CLASSES = ("COVID", "Normal", "Viral_Pneumonia")


def test_low_top_probability_yields_uncertain():
    prediction = decide(np.array([0.6, 0.3, 0.1]), CLASSES, threshold=0.75)
    assert prediction.label == "Uncertain" and prediction.uncertain
    assert prediction.top_class == "COVID"
    assert prediction.confidence == pytest.approx(0.6)
    assert prediction.threshold == 0.75


def test_top_probability_at_the_threshold_is_answered():
    prediction = decide(np.array([0.75, 0.2, 0.05]), CLASSES, threshold=0.75)
    assert prediction.label == "COVID" and not prediction.uncertain
    assert list(prediction.probabilities) == list(CLASSES)


def test_prediction_is_frozen():
    prediction = decide(np.array([0.2, 0.8, 0.0]), CLASSES, threshold=0.5)
    with pytest.raises(FrozenInstanceError):
        prediction.label = "COVID"


def test_importing_ml_infer_does_not_import_tensorflow_or_flask():
    code = (
        "import sys, ml.infer, ml.cli, ml.gradcam\n"
        "heavy = {'tensorflow', 'keras', 'flask', 'sqlalchemy', 'csss_fhir'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_demo_model_loads_by_default_and_once(demo):
    assert demo.path == DEMO_MODEL
    assert Classifier.load() is demo
    assert Classifier.load(DEMO_MODEL.parent) is demo
    assert Classifier.load(str(DEMO_MODEL)) is demo


def test_demo_model_metadata_is_complete_and_json(demo):
    metadata = demo.metadata
    json.dumps(metadata)
    assert metadata["input_size"] == [224, 224]
    assert metadata["manufacturer"] == "CSSS-FHIR project"
    assert metadata["threshold"] == 0.75
    assert metadata["temperature"] > 0
    assert "not for clinical use" in metadata["intended_use"]
    assert len(metadata["sha256"]) == 64
    assert {"accuracy", "ece", "macro_f1"} <= set(metadata["metrics"])
    for key in ("name", "version", "classes", "preprocessing", "training_data"):
        assert metadata[key]
    metadata["classes"].append("tampered")
    assert "tampered" not in demo.metadata["classes"]


def test_demo_model_predicts_a_real_radiograph(demo):
    jpeg = (RADIOGRAPHS / "Normal__sky_039a0dbbcfb0.jpg").read_bytes()
    prediction = demo.predict(jpeg)
    assert isinstance(prediction, Prediction)
    assert prediction.assessable and prediction.reason is None
    assert list(prediction.probabilities) == list(demo.metadata["classes"])
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.label == prediction.top_class == "Normal"
    assert prediction.threshold == 0.75
    # The decoded bytes as a gray array and as an RGB array are the same image.
    decoded = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    for same in (decoded, np.repeat(decoded[..., None], 3, axis=2)):
        assert demo.predict(same).probabilities == pytest.approx(prediction.probabilities)
    assert demo.predict(jpeg, threshold=1.01).label == "Uncertain"
    assert demo.predict(jpeg, threshold=0.0).label == prediction.top_class


def test_a_generated_pattern_is_not_assessable_but_keeps_its_probabilities(demo):
    gray = cv2.resize(make_image(1, np.random.default_rng(0)), (256, 256))
    prediction = demo.predict(cv2.imencode(".jpg", gray)[1].tobytes(), threshold=0.0)
    assert not prediction.assessable and prediction.label == NOT_ASSESSABLE
    assert prediction.uncertain and prediction.reason in REASONS
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.top_class in demo.classes


def test_predict_batch_equals_predict(demo, png_bytes):
    gray = make_image(2, np.random.default_rng(5))
    results = demo.predict_batch([png_bytes, gray])
    assert [r.probabilities for r in results] == [
        demo.predict(png_bytes).probabilities, demo.predict(gray).probabilities
    ]


def test_threads_share_one_classifier_safely(demo):
    images = [make_image(i % 3, np.random.default_rng(i)) for i in range(12)]
    expected = [demo.predict(image).probabilities for image in images]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(demo.predict, images))
    assert [r.probabilities for r in results] == expected


def test_the_assessability_check_runs_on_one_blas_thread(demo, monkeypatch):
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    jpeg = (RADIOGRAPHS / "Normal__sky_039a0dbbcfb0.jpg").read_bytes()
    (_, features, _), _ = demo._run(jpeg)
    default_threads = demo.limits.distance(features)
    seen: list[list[int]] = []
    judge = type(demo.limits).judge

    def watched(limits, *args):
        seen.append(blas_threads())
        return judge(limits, *args)

    monkeypatch.setattr(type(demo.limits), "judge", watched)
    assert demo.predict(jpeg).assessable
    assert seen and all(count == 1 for count in seen[0])
    # Set once for the process, not around each call (that halved the workers' reads).
    assert all(count == 1 for count in blas_threads())
    # The thread count changes no result.
    assert demo.limits.distance(features) == pytest.approx(default_threads, rel=1e-5)


def test_undecodable_bytes_raise(demo):
    with pytest.raises(ImageDecodeError):
        demo.predict(b"GIF89a but not really")


def test_gradcam_heatmap_and_overlay(demo, png_bytes):
    prediction, heatmap = demo.explain(png_bytes)
    assert heatmap.shape == (224, 224) and heatmap.dtype == np.float32
    assert 0.0 <= heatmap.min() and heatmap.max() <= 1.0
    np.testing.assert_allclose(demo.gradcam(png_bytes, prediction.top_class), heatmap)
    png = overlay_png(png_bytes, heatmap)
    overlay = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert overlay.shape == (48, 64, 3)
    with pytest.raises(ValueError):
        demo.gradcam(png_bytes, "Fracture")


def test_model_path_environment_variable_is_used(tmp_path, monkeypatch):
    copy = tmp_path / "copy"
    shutil.copytree(DEMO_MODEL.parent, copy)
    monkeypatch.setenv("MODEL_PATH", str(copy / "model.tflite"))
    classifier = Classifier.load()
    assert classifier.path == (copy / "model.tflite").resolve()
    monkeypatch.setenv("MODEL_PATH", "")
    assert Classifier.load().path == DEMO_MODEL


def test_a_model_whose_metadata_sha256_differs_is_refused(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(DEMO_MODEL.parent, copy)
    metadata = json.loads((copy / "model.json").read_text())
    metadata["sha256"] = "0" * 64
    (copy / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(ModelLoadError, match="sha256"):
        Classifier.load(copy)


def test_missing_model_or_metadata_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        Classifier.load(tmp_path / "absent.tflite")
    shutil.copy(DEMO_MODEL, tmp_path / "model.tflite")
    with pytest.raises(ModelLoadError, match="metadata"):
        Classifier.load(tmp_path)
