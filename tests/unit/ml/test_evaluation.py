"""ml.evaluation: metrics equal scikit-learn's; the report files are written."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ml.evaluation import compute_metrics, one_vs_rest_roc, tau_tradeoff, write_report

CLASSES = ["A", "B", "C"]
Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PROBABILITIES = np.array(
    [
        [0.90, 0.05, 0.05],
        [0.60, 0.30, 0.10],
        [0.40, 0.50, 0.10],
        [0.20, 0.20, 0.60],
        [0.10, 0.80, 0.10],
        [0.30, 0.65, 0.05],
        [0.50, 0.40, 0.10],
        [0.05, 0.05, 0.90],
        [0.10, 0.20, 0.70],
        [0.35, 0.30, 0.35],
    ]
)


def test_metrics_equal_sklearn():
    metrics_module = pytest.importorskip("sklearn.metrics")
    y_pred = PROBABILITIES.argmax(axis=1)
    m = compute_metrics(Y_TRUE, PROBABILITIES, CLASSES, threshold=0.75)
    assert m["accuracy"] == pytest.approx(metrics_module.accuracy_score(Y_TRUE, y_pred))
    for ours, average in (("macro_precision", "precision"), ("macro_sensitivity", "recall"),
                          ("macro_f1", "f1")):
        function = getattr(metrics_module, f"{average}_score")
        assert m[ours] == pytest.approx(function(Y_TRUE, y_pred, average="macro", zero_division=0))
    precision, recall, f1, support = metrics_module.precision_recall_fscore_support(
        Y_TRUE, y_pred, zero_division=0
    )
    matrix = metrics_module.confusion_matrix(Y_TRUE, y_pred)
    assert m["confusion_matrix"] == matrix.tolist()
    for i, name in enumerate(CLASSES):
        per_class = m["per_class"][name]
        assert per_class["precision"] == pytest.approx(precision[i])
        assert per_class["sensitivity"] == pytest.approx(recall[i])
        assert per_class["f1"] == pytest.approx(f1[i])
        assert per_class["support"] == support[i]
        tn = matrix.sum() - matrix[i].sum() - matrix[:, i].sum() + matrix[i, i]
        assert per_class["specificity"] == pytest.approx(tn / (tn + matrix[:, i].sum()
                                                               - matrix[i, i]))
        auc = one_vs_rest_roc(Y_TRUE == i, PROBABILITIES[:, i])[2]
        assert auc == pytest.approx(metrics_module.roc_auc_score(Y_TRUE == i, PROBABILITIES[:, i]))


def test_abstention_metrics_follow_the_threshold():
    m = compute_metrics(Y_TRUE, PROBABILITIES, CLASSES, threshold=0.75)
    # Accepted (top ≥ 0.75): rows 0, 4, 7; all correct.
    assert m["uncertain_rate"] == pytest.approx(0.7)
    assert m["accuracy_on_accepted"] == 1.0
    rows = tau_tradeoff(Y_TRUE, PROBABILITIES, taus=(0.0, 0.75, 0.99))
    assert [r["coverage"] for r in rows] == pytest.approx([1.0, 0.3, 0.0])
    assert rows[2]["accuracy_on_accepted"] == 0.0


def test_write_report_writes_metrics_plots_and_summary(tmp_path):
    pytest.importorskip("matplotlib")
    metrics = write_report(tmp_path, Y_TRUE, PROBABILITIES, CLASSES, 0.75,
                           uncalibrated=PROBABILITIES)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("accuracy", "macro_precision", "macro_sensitivity", "macro_specificity",
                "macro_f1", "ece", "uncertain_rate", "accuracy_on_accepted", "per_class", "n",
                "ece_uncalibrated", "tau_tradeoff"):
        assert key in stored
    assert stored == json.loads(json.dumps(metrics))
    for name in ("confusion_matrix.png", "roc.png", "reliability.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "| accuracy |" in (tmp_path / "summary.md").read_text()


def test_write_report_without_matplotlib_still_writes_metrics_and_summary(tmp_path,
                                                                           monkeypatch):
    # None in sys.modules makes `import matplotlib` raise ImportError, as on the base install.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    metrics = write_report(tmp_path, Y_TRUE, PROBABILITIES, CLASSES, 0.75)
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == metrics["accuracy"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| accuracy |" in summary and "matplotlib is not installed" in summary
    assert not list(tmp_path.glob("*.png"))
