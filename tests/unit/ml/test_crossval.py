"""ml.crossval: k-fold rounds through ml.training.train, summarised as mean ± sd."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
from click.testing import CliRunner

from ml.cli import crossval as crossval_command
from ml.crossval import flatten_metrics, summarize
from ml.data import discover, read_manifest


def _metrics(accuracy: float, covid_sensitivity: float) -> dict:
    return {
        "n": 10, "classes": ["COVID"], "threshold": 0.75, "accuracy": accuracy,
        "per_class": {"COVID": {"sensitivity": covid_sensitivity, "support": 4}},
        "tau_tradeoff": [{"tau": 0.75, "coverage": 0.5, "accuracy_on_accepted": 1.0}],
        "confusion_matrix": [[4]],
    }


def test_flatten_keeps_metrics_and_drops_counts():
    assert flatten_metrics(_metrics(0.8, 0.9)) == {
        "accuracy": 0.8,
        "per_class.COVID.sensitivity": 0.9,
        "tau_tradeoff.0.75.coverage": 0.5,
        "tau_tradeoff.0.75.accuracy_on_accepted": 1.0,
    }


def test_summary_is_mean_and_sample_standard_deviation():
    summary = summarize([_metrics(0.8, 1.0), _metrics(0.9, 1.0), _metrics(0.7, 1.0)])
    assert summary["accuracy"]["mean"] == pytest.approx(0.8)
    assert summary["accuracy"]["sd"] == pytest.approx(0.1)  # ddof 1: sqrt(0.02 / 2)
    assert summary["accuracy"]["values"] == pytest.approx([0.8, 0.9, 0.7])
    assert summary["per_class.COVID.sensitivity"]["sd"] == 0.0


def test_command_refuses_a_single_fold(tiny_dataset, tmp_path):
    weights = tmp_path / "weights.h5"
    weights.write_bytes(b"unused")
    result = CliRunner().invoke(crossval_command, [
        "--data", str(tiny_dataset), "--backbone-weights", str(weights),
        "--out", str(tmp_path / "cv"), "--folds", "1"])
    assert result.exit_code == 2 and "--folds" in result.output


@pytest.mark.slow  # five tiny Keras trainings: about 20 s on 2 cores
def test_five_rounds_test_every_image_once_and_report_every_evaluate_metric(
        tiny_dataset, tmp_path):
    pytest.importorskip("tensorflow")
    from ml.crossval import crossval
    from ml.training import TrainingConfig, train

    config = TrainingConfig(recipe="paper", augment="none", epochs=3, learning_rate=1e-2,
                            input_size=(32, 32), alpha=0.35, batch_size=8, verbose=0)
    result = crossval(tiny_dataset, tmp_path, folds=5, seed=3,
                      train=partial(train, backbone_weights=None, config=config))

    tested = [s.path for i in range(1, 6)
              for s in read_manifest(tmp_path / f"fold-{i}" / "split.csv")["test"]]
    assert sorted(tested) == sorted(s.path for s in discover(tiny_dataset)[1])
    assert np.sum(result.confusion_matrix) == 60
    # Every number `csss evaluate` reports is summarised (its metrics.json, per round).
    evaluated = json.loads((tmp_path / "fold-1" / "metrics.json").read_text())
    assert set(result.summary) == set(flatten_metrics(evaluated))
    assert {"macro_sensitivity", "ece", "ece_uncalibrated", "temperature",
            "per_class.Beta.roc_auc", "tau_tradeoff.0.75.coverage"} <= set(result.summary)
    accuracy = [m["accuracy"] for m in result.rounds]
    assert result.summary["accuracy"]["mean"] == pytest.approx(np.mean(accuracy))
    assert result.summary["accuracy"]["sd"] == pytest.approx(np.std(accuracy, ddof=1))
    written = json.loads((tmp_path / "crossval.json").read_text())
    assert written["summary"]["accuracy"] == result.summary["accuracy"]
    table = (tmp_path / "crossval.md").read_text()
    mean, sd = result.summary["accuracy"]["mean"], result.summary["accuracy"]["sd"]
    assert f"| accuracy | {mean:.3f} ± {sd:.3f} |" in table
