"""Stratified k-fold cross-validation of a training recipe: mean ± standard deviation.

One split of 480 test images moves accuracy by about ±2 points from chance alone, too much to
tell recipes apart. ``crossval`` trains the recipe ``k`` times with ``ml.training.train``
(round ``i``: test = fold ``i``, val = fold ``i + 1``, train = the rest; see
``ml.data.fold_splits``), so every round writes what a training run writes, including the test
fold's evaluation as ``csss evaluate`` reports it, and then summarises each metric over the
rounds. Nothing here trains or measures by itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data import discover, fold_splits, stratified_folds

log = logging.getLogger(__name__)

# Keys of a metrics dict that describe the data, not the model: not summarised.
_NOT_METRICS = frozenset({"n", "classes", "threshold", "support", "confusion_matrix"})

# The rows of the markdown table, in this order, then the per-class rows.
_HEADLINE = (
    "accuracy", "macro_precision", "macro_sensitivity", "macro_specificity", "macro_f1", "ece",
    "ece_uncalibrated", "uncertain_rate", "accuracy_on_accepted", "temperature",
)


@dataclass(frozen=True)
class CrossValidation:
    """Per-round metrics and their summary (``{"metric": {"mean", "sd", "values"}}``)."""

    folds: int
    seed: int
    rounds: list[dict]
    summary: dict[str, dict]
    confusion_matrix: list[list[int]]  # summed over the rounds: every image counted once


def flatten_metrics(metrics: dict) -> dict[str, float]:
    """The numeric metrics of one evaluation as ``{dotted.name: value}``.

    ``per_class.COVID.sensitivity``, ``tau_tradeoff.0.75.coverage``; counts and the
    confusion matrix are left out (the confusion matrix is summed instead).
    """
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if key in _NOT_METRICS:
            continue
        if key == "per_class":
            for name, per_class in value.items():
                for metric, number in per_class.items():
                    if metric not in _NOT_METRICS:
                        flat[f"per_class.{name}.{metric}"] = float(number)
        elif key == "tau_tradeoff":
            for row in value:
                for metric in ("coverage", "accuracy_on_accepted"):
                    flat[f"tau_tradeoff.{row['tau']:.2f}.{metric}"] = float(row[metric])
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[key] = float(value)
    return flat


def summarize(rounds: Sequence[dict]) -> dict[str, dict]:
    """Mean and sample standard deviation (ddof 1) of every metric present in every round."""
    flat = [flatten_metrics(metrics) for metrics in rounds]
    common = [key for key in flat[0] if all(key in f for f in flat)]
    summary = {}
    for key in common:
        values = np.array([f[key] for f in flat])
        summary[key] = {
            "mean": float(values.mean()),
            "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "values": values.tolist(),
        }
    return summary


def crossval(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    train: Callable[..., object],
    folds: int = 5,
    seed: int = 42,
) -> CrossValidation:
    """Run ``train(data_dir, out_dir / f"fold-{i}", splits=...)`` for each round; summarise.

    ``train`` is ``ml.training.train`` with its recipe bound (``functools.partial``); it must
    return a result whose ``metadata["metrics"]`` are the test fold's. Writes
    ``crossval.json`` and ``crossval.md`` to ``out_dir``.

    Raises:
        ValueError: fewer than 2 folds, or a class with fewer images than folds.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    classes, samples = discover(data_dir)
    dealt = stratified_folds(samples, folds, seed)
    rounds = []
    for index in range(folds):
        log.info("cross-validation round %d of %d", index + 1, folds)
        result = train(data_dir, out_dir / f"fold-{index + 1}",
                       splits=fold_splits(dealt, index))
        rounds.append(result.metadata["metrics"])
    matrix = np.sum([np.array(m["confusion_matrix"]) for m in rounds], axis=0)
    result = CrossValidation(folds, seed, rounds, summarize(rounds), matrix.tolist())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "crossval.json").write_text(json.dumps({
        "folds": folds, "seed": seed, "classes": classes, "summary": result.summary,
        "confusion_matrix": result.confusion_matrix, "rounds": rounds,
    }, indent=2) + "\n")
    (out_dir / "crossval.md").write_text(render_markdown(result, classes, data_dir.name))
    return result


def render_markdown(result: CrossValidation, classes: Sequence[str], dataset: str) -> str:
    """The summary as a markdown table: metric, mean ± sd, then each round's value."""
    header = " | ".join(f"fold {i + 1}" for i in range(result.folds))
    lines = [f"# {result.folds}-fold cross-validation on {dataset} (seed {result.seed})", "",
             f"| metric | mean ± sd | {header} |", "|---|---|" + "---|" * result.folds]
    ordered = [key for key in _HEADLINE if key in result.summary]
    ordered += [key for key in result.summary if key not in ordered]
    for key in ordered:
        entry = result.summary[key]
        values = " | ".join(f"{v:.3f}" for v in entry["values"])
        lines.append(f"| {key} | {entry['mean']:.3f} ± {entry['sd']:.3f} | {values} |")
    lines += ["", "Confusion matrix, all rounds (rows: true, columns: predicted):", "",
              "| | " + " | ".join(classes) + " |", "|---" * (len(classes) + 1) + "|"]
    for name, row in zip(classes, result.confusion_matrix, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
