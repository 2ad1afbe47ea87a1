"""ml.training, ml.export and ml.gradcam with TensorFlow, on tiny generated data.

The models are the production ``build_classifier`` with random weights, a 0.35 width and
small inputs, so the whole module runs in well under a minute on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras
from click.testing import CliRunner

from ml import gradcam
from ml.cli import evaluate, predict
from ml.cli import export as export_command
from ml.data import read_manifest
from ml.export import export
from ml.infer import Classifier
from ml.model import build_classifier, serving_model
from ml.training import TrainingConfig, _keep_better, fit_phase, train

from .conftest import CLASSES, make_image, write_dataset

pytestmark = pytest.mark.slow  # real (tiny) Keras training and TFLite export: ~50 s in all

TINY = {"input_size": (32, 32), "alpha": 0.35, "batch_size": 8, "verbose": 0}


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """The finetune recipe with augmentation, end to end, on 3 × 20 images of 32×32."""
    out = tmp_path_factory.mktemp("run")
    config = TrainingConfig(recipe="finetune", augment="all", epochs=2, finetune_epochs=1,
                            learning_rate=3e-3, finetune_learning_rate=1e-3, **TINY)
    return train(tiny_dataset, out, backbone_weights=None, config=config)


@pytest.fixture(scope="module")
def exported(trained):
    return export(trained.model_path, trained.model_path.parent / "export", fp16=False)


def test_training_runs_end_to_end(trained):
    out = trained.model_path.parent
    for name in ("model.keras", "model.json", "split.csv", "metrics.json", "history.json",
                 "curves.png", "checkpoint.keras"):
        assert (out / name).is_file(), name
    split = read_manifest(out / "split.csv")
    assert [len(split[name]) for name in ("train", "val", "test")] == [42, 9, 9]
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["classes"] == list(CLASSES)
    assert metadata["input_size"] == [32, 32]
    assert metadata["temperature"] > 0
    assert metadata["training"]["recipe"] == "finetune"
    assert set(trained.history) == {"paper", "finetune"}
    assert {"accuracy", "ece", "ece_uncalibrated", "uncertain_rate"} <= set(metadata["metrics"])
    image = make_image(0, np.random.default_rng(9))
    prediction = Classifier.load(out / "model.keras").predict(image)
    assert prediction.top_class in CLASSES


def test_fast_path_caches_features_and_learns(tiny_dataset, tmp_path):
    config = TrainingConfig(recipe="finetune", augment="none", epochs=4, finetune_epochs=1,
                            learning_rate=1e-2, cache_dir=str(tmp_path / "cache"), **TINY)
    result = train(tiny_dataset, tmp_path / "run", backbone_weights=None, config=config)
    assert len(list((tmp_path / "cache").glob("features-*.npy"))) == 1
    epochs = result.history["paper"]
    assert epochs[-1]["loss"] < epochs[0]["loss"]


def test_cached_head_then_augmented_deeper_finetune(tiny_dataset, tmp_path):
    config = TrainingConfig(recipe="finetune", augment="finetune", epochs=1, finetune_epochs=1,
                            finetune_from="block_10_expand", cache_dir=str(tmp_path / "c"),
                            **TINY)
    result = train(tiny_dataset, tmp_path / "run", backbone_weights=None, config=config)
    assert "cache_features_s" in result.timings and "finetune_fit_s" in result.timings
    assert set(result.history) == {"paper", "finetune"}


def test_fast_path_refuses_to_finetune_below_the_cache(tiny_dataset, tmp_path):
    config = TrainingConfig(augment="none", epochs=1, finetune_from="block_10_expand", **TINY)
    with pytest.raises(ValueError, match="block_14_expand"):
        train(tiny_dataset, tmp_path, backbone_weights=None, config=config)


def _tiny_dense_model():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2, activation="softmax")(keras.layers.Dense(8)(inputs))
    return keras.Model(inputs, outputs)


def test_early_stopping_restores_the_best_epoch():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    # Validation labels are the opposite rule: the better it fits, the worse val_loss gets,
    # so epoch 1 is the best and training stops after 1 + patience epochs.
    model = _tiny_dense_model()
    snapshots = []
    recorder = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: snapshots.append(model.get_weights())
    )
    config = TrainingConfig(patience=2, batch_size=16, verbose=0)
    history = fit_phase(model, x, y, (x, 1 - y), epochs=10, learning_rate=0.05, config=config,
                        weights=None, callbacks=[recorder], phase="test")
    losses = [e["val_loss"] for e in history["epochs"]]
    assert len(losses) == 3 and history["best_epoch"] == 1
    assert losses[0] < losses[-1]
    for restored, best in zip(model.get_weights(), snapshots[0], strict=True):
        np.testing.assert_array_equal(restored, best)
    assert not np.array_equal(snapshots[-1][0], snapshots[0][0])


def test_finetuning_that_does_not_beat_the_paper_phase_is_undone():
    model = _tiny_dense_model()
    before = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in before])
    history = {"paper": {"epochs": [{"val_loss": 0.3}]},
               "finetune": {"epochs": [{"val_loss": 0.4}, {"val_loss": 0.35}]}}
    _keep_better(model, before, history)
    assert history["finetune"]["kept"] is False
    np.testing.assert_array_equal(model.get_weights()[0], before[0])


def test_exported_tflite_matches_keras_within_1e_4(trained, exported):
    keras_model = keras.saving.load_model(trained.model_path, compile=False)
    reference = serving_model(keras_model)
    served = Classifier.load(exported)
    rng = np.random.default_rng(3)
    for label in range(3):
        image = make_image(label, rng)
        batch = np.asarray(image[None, ..., None].repeat(3, axis=3), np.float32) / 255.0
        expected = [np.asarray(t)[0] for t in reference(batch)]
        actual = served._runner.run(batch)
        # Not vacuous: a freshly initialised network outputs equal logits for every class;
        # after training they differ by far more than the tolerance.
        assert np.ptp(expected[0]) > 100 * 1e-4
        for got, want in zip(actual, expected, strict=True):
            np.testing.assert_allclose(got, want, atol=1e-4)


@pytest.fixture(scope="module")
def gradcam_model():
    """A 96×96 classifier (3×3 feature maps); its random head is as good as a trained one."""
    keras.utils.set_random_seed(1)
    model = build_classifier(3, weights=None, input_size=(96, 96), alpha=0.35)
    x = np.random.default_rng(1).random((4, 96, 96, 3), dtype=np.float32)
    return model, x


def test_closed_form_gradcam_equals_autodiff(gradcam_model):
    model, x = gradcam_model
    serving = serving_model(model)
    informative = 0
    for index in range(len(x)):
        _, features, weights = (np.asarray(t)[0] for t in serving(x[index : index + 1]))
        for class_index in range(3):
            expected = gradcam.autodiff(model, x[index], class_index)
            closed = gradcam.closed_form(features, weights[:, class_index])
            assert expected.shape == (3, 3)
            np.testing.assert_allclose(closed, expected, atol=1e-5)
            informative += int(expected.max() == 1.0 and expected.min() < 1.0)
    assert informative >= 3  # not vacuous: heatmaps that are not all zero or all one


def test_litert_gradcam_equals_autodiff(gradcam_model, tmp_path):
    model, x = gradcam_model
    model.save(tmp_path / "model.keras")
    (tmp_path / "model.json").write_text(json.dumps(
        {"classes": ["a", "b", "c"], "input_size": [96, 96], "threshold": 0.75,
         "temperature": 1.0}))
    served = Classifier.load(export(tmp_path / "model.keras", tmp_path / "lite", fp16=False))
    image = (x[0] * 255).round().astype(np.uint8)
    prediction = served.predict(image)
    top = served.classes.index(prediction.top_class)
    expected = gradcam.upsample(
        gradcam.autodiff(model, image.astype(np.float32) / 255.0, top), (96, 96))
    np.testing.assert_allclose(served.gradcam(image), expected, atol=1e-4)


def test_evaluate_command_writes_the_report(exported, tiny_dataset, tmp_path):
    result = CliRunner().invoke(
        evaluate, ["--data", str(tiny_dataset), "--model", str(exported), "--out",
                   str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 60 and set(metrics["per_class"]) == set(CLASSES)
    for name in ("confusion_matrix.png", "roc.png", "reliability.png", "summary.md"):
        assert (tmp_path / "eval" / name).is_file()


def test_evaluate_without_matplotlib_still_writes_metrics_and_summary(
    exported, tiny_dataset, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` fails
    result = CliRunner().invoke(
        evaluate, ["--data", str(tiny_dataset), "--model", str(exported), "--out",
                   str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["n"] == 60
    assert "matplotlib is not installed" in (tmp_path / "eval" / "summary.md").read_text()
    assert not list((tmp_path / "eval").glob("*.png"))


def test_int8_export_is_calibrated_on_training_images_and_serves(trained, tiny_dataset,
                                                                 tmp_path):
    runner = CliRunner()
    refused = runner.invoke(export_command, ["--model", str(trained.model_path), "--out",
                                             str(tmp_path / "x"), "--int8"])
    assert refused.exit_code != 0 and "--calibration-data" in refused.output
    result = runner.invoke(export_command, [
        "--model", str(trained.model_path), "--out", str(tmp_path / "int8"), "--int8",
        "--calibration-data", str(tiny_dataset), "--calibration-images", "12"])
    assert result.exit_code == 0, result.output
    int8_path = tmp_path / "int8" / "model.tflite"
    metadata = json.loads(int8_path.with_suffix(".json").read_text())
    assert metadata["format"] == "tflite-int8"
    assert metadata["quantization"]["calibration_images"] == 12
    float_path = export(trained.model_path, tmp_path / "fp32", fp16=False)
    assert int8_path.stat().st_size < 0.5 * float_path.stat().st_size
    int8_model, float_model = Classifier.load(int8_path), Classifier.load(float_path)
    images = [make_image(i % 3, np.random.default_rng(100 + i)) for i in range(12)]
    quantised = np.array([int8_model.logits(image) for image in images])
    reference = np.array([float_model.logits(image) for image in images])
    # Quantisation moves the logits a little, and keeps them from being all equal.
    assert np.abs(quantised - reference).max() < 0.25 * np.abs(reference).max() + 0.05
    assert np.ptp(quantised) > 0


def test_evaluate_refuses_classes_the_model_does_not_know(exported, tiny_dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    write_dataset(tmp_path / "extra", per_class=2)
    shutil.copytree(tmp_path / "extra" / "Alpha", data / "Fracture")
    result = CliRunner().invoke(
        evaluate, ["--data", str(data), "--model", str(exported), "--out", str(tmp_path / "e")])
    assert result.exit_code != 0
    assert "Fracture" in result.output and "not in the model" in result.output


def test_predict_command_prints_json_and_writes_gradcam(exported, tiny_dataset, tmp_path):
    image = next((tiny_dataset / "Beta").iterdir())
    result = CliRunner().invoke(
        predict, [str(image), "--model", str(exported), "--gradcam", str(tmp_path / "cam.png")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["top_class"] in CLASSES
    assert (tmp_path / "cam.png").read_bytes()[:4] == b"\x89PNG"
