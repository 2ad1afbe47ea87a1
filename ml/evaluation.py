"""Metrics, the τ trade-off, plots and the markdown summary of an evaluation.

``compute_metrics`` is NumPy only (the tests compare it with scikit-learn); the plots import
matplotlib when called, and are skipped (with a note in summary.md) where it is not
installed: the base install evaluates ``.tflite`` models without the ``ml`` extra.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.calibration import expected_calibration_error, reliability_bins

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

NO_PLOTS_NOTE = (
    "Plots skipped: matplotlib is not installed. Install the `ml` extra "
    "(`pip install 'csss-fhir[ml]'`) and evaluate again to get them."
)
TAU_GRID = (0.50, 0.55, 0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90, 0.95)


def _safe_ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else 0.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts with true classes as rows and predicted classes as columns."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def compute_metrics(
    y_true: Sequence[int] | np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    threshold: float,
) -> dict:
    """Classification, calibration and abstention metrics for arg-max predictions.

    Accuracy, precision, sensitivity (recall), specificity and F1 are for the arg-max class
    (every image gets a class); ``uncertain_rate`` and ``accuracy_on_accepted`` apply the
    threshold rule (answer only when the top probability is at least ``threshold``).
    Macro averages are unweighted means over classes; a ratio with a zero denominator is 0,
    as scikit-learn's ``zero_division=0``.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    k = len(classes)
    y_pred = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    matrix = confusion_matrix(y_true, y_pred, k)
    n = int(len(y_true))
    per_class = {}
    for i, name in enumerate(classes):
        tp = matrix[i, i]
        fp = matrix[:, i].sum() - tp
        fn = matrix[i, :].sum() - tp
        tn = n - tp - fp - fn
        precision = _safe_ratio(tp, tp + fp)
        sensitivity = _safe_ratio(tp, tp + fn)
        per_class[name] = {
            "precision": precision,
            "sensitivity": sensitivity,
            "specificity": _safe_ratio(tn, tn + fp),
            "f1": _safe_ratio(2 * precision * sensitivity, precision + sensitivity),
            "support": int(tp + fn),
        }
    accepted = confidence >= threshold
    correct = y_pred == y_true

    def macro(key: str) -> float:
        return float(np.mean([m[key] for m in per_class.values()]))

    return {
        "n": n,
        "classes": list(classes),
        "threshold": float(threshold),
        "accuracy": _safe_ratio(correct.sum(), n),
        "macro_precision": macro("precision"),
        "macro_sensitivity": macro("sensitivity"),
        "macro_specificity": macro("specificity"),
        "macro_f1": macro("f1"),
        "ece": expected_calibration_error(probabilities, y_true),
        "uncertain_rate": _safe_ratio((~accepted).sum(), n),
        "accuracy_on_accepted": _safe_ratio((correct & accepted).sum(), accepted.sum()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def tau_tradeoff(
    y_true: np.ndarray, probabilities: np.ndarray, taus: Sequence[float] = TAU_GRID
) -> list[dict[str, float]]:
    """Coverage (share answered) and accuracy on the answered images for each τ."""
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    rows = []
    for tau in taus:
        accepted = confidence >= tau
        rows.append(
            {
                "tau": float(tau),
                "coverage": _safe_ratio(accepted.sum(), len(y_true)),
                "accuracy_on_accepted": _safe_ratio((correct & accepted).sum(), accepted.sum()),
            }
        )
    return rows


def one_vs_rest_roc(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """ROC curve (FPR, TPR) and its AUC for binary ``y_true`` and scores (ties grouped)."""
    y_true = np.asarray(y_true, dtype=bool)
    order = np.argsort(-np.asarray(scores), kind="mergesort")
    scores_sorted = np.asarray(scores)[order]
    hits = y_true[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores_sorted)), len(hits) - 1]
    tps = np.cumsum(hits)[distinct]
    fps = (distinct + 1) - tps
    tpr = np.r_[0.0, tps / max(hits.sum(), 1)]
    fpr = np.r_[0.0, fps / max((~hits).sum(), 1)]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def write_report(
    out_dir: str | Path,
    y_true: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    threshold: float,
    *,
    uncalibrated: np.ndarray | None = None,
    title: str = "Evaluation",
    extra: dict | None = None,
) -> dict:
    """Write metrics.json, the PNG plots and summary.md to ``out_dir``; return the metrics.

    ``probabilities`` are the served (temperature-scaled) ones; ``uncalibrated`` (T = 1), if
    given, adds ``ece_uncalibrated`` and a second reliability diagram. Without matplotlib the
    plots are left out and summary.md says so; the metrics are the same.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = compute_metrics(y_true, probabilities, classes, threshold)
    if uncalibrated is not None:
        metrics["ece_uncalibrated"] = compute_metrics(
            y_true, uncalibrated, classes, threshold
        )["ece"]
    metrics["tau_tradeoff"] = tau_tradeoff(y_true, probabilities)
    aucs = {}
    for i, name in enumerate(classes):
        aucs[name] = one_vs_rest_roc(np.asarray(y_true) == i, probabilities[:, i])[2]
        metrics["per_class"][name]["roc_auc"] = aucs[name]
    metrics.update(extra or {})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    summary = render_summary(metrics, title)
    if _pyplot() is None:
        log.warning("matplotlib is not installed; evaluation plots skipped")
        summary += f"\n{NO_PLOTS_NOTE}\n"
    else:
        _plot_confusion(np.array(metrics["confusion_matrix"]), classes,
                        out / "confusion_matrix.png")
        _plot_roc(y_true, probabilities, classes, out / "roc.png")
        diagrams = {"served (temperature-scaled)": probabilities}
        if uncalibrated is not None:
            diagrams = {"uncalibrated (T = 1)": uncalibrated, **diagrams}
        _plot_reliability(y_true, diagrams, out / "reliability.png")
    (out / "summary.md").write_text(summary)
    return metrics


def render_summary(metrics: dict, title: str) -> str:
    """Markdown summary of a metrics dict written by ``write_report``."""
    lines = [f"# {title}", "", f"n = {metrics['n']}, τ = {metrics['threshold']:.2f}", ""]
    lines += ["| metric | value |", "|---|---|"]
    for key in ("accuracy", "macro_precision", "macro_sensitivity", "macro_specificity",
                "macro_f1", "ece", "ece_uncalibrated", "uncertain_rate",
                "accuracy_on_accepted", "temperature"):
        if key in metrics:
            lines.append(f"| {key} | {metrics[key]:.4f} |")
    lines += ["", "| class | precision | sensitivity | specificity | F1 | AUC | support |",
              "|---|---|---|---|---|---|---|"]
    for name, m in metrics["per_class"].items():
        lines.append(
            f"| {name} | {m['precision']:.3f} | {m['sensitivity']:.3f} | "
            f"{m['specificity']:.3f} | {m['f1']:.3f} | {m.get('roc_auc', float('nan')):.3f} | "
            f"{m['support']} |"
        )
    lines += ["", "Confusion matrix (rows: true, columns: predicted):", "",
              "| | " + " | ".join(metrics["classes"]) + " |",
              "|---" * (len(metrics["classes"]) + 1) + "|"]
    for name, row in zip(metrics["classes"], metrics["confusion_matrix"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    if "tau_tradeoff" in metrics:
        lines += ["", "τ trade-off (answer only when the top probability ≥ τ):", "",
                  "| τ | coverage | accuracy on accepted |", "|---|---|---|"]
        for row in metrics["tau_tradeoff"]:
            lines.append(f"| {row['tau']:.2f} | {row['coverage']:.3f} | "
                         f"{row['accuracy_on_accepted']:.4f} |")
    return "\n".join(lines) + "\n"


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or None where it is not installed."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_confusion(matrix: np.ndarray, classes: Sequence[str], path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 5))
    axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    for (i, j), value in np.ndenumerate(matrix):
        colour = "white" if value > matrix.max() / 2 else "black"
        axis.text(j, i, str(value), ha="center", va="center", color=colour)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_roc(y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str],
              path: Path) -> None:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 5))
    for i, name in enumerate(classes):
        fpr, tpr, auc = one_vs_rest_roc(np.asarray(y_true) == i, probabilities[:, i])
        axis.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":")
    axis.set_xlabel("false positive rate")
    axis.set_ylabel("true positive rate")
    axis.set_title("ROC, one vs rest")
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_reliability(y_true: np.ndarray, diagrams: dict[str, np.ndarray], path: Path) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(diagrams), figsize=(5 * len(diagrams), 4.5), squeeze=False)
    for axis, (name, probabilities) in zip(axes[0], diagrams.items(), strict=True):
        bins = reliability_bins(probabilities, y_true)
        centres = [(b["lower"] + b["upper"]) / 2 for b in bins]
        width = bins[0]["upper"] - bins[0]["lower"]
        axis.bar(centres, [b["accuracy"] for b in bins], width=width, edgecolor="black",
                 label="accuracy")
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        ece = expected_calibration_error(probabilities, y_true)
        axis.set_title(f"{name}\nECE {ece:.4f}")
        axis.set_xlabel("confidence")
        axis.set_ylabel("accuracy")
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
