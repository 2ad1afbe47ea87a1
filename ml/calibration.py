"""Softmax, temperature scaling (Guo et al. 2017) and expected calibration error; NumPy only.

Temperature scaling divides the logits by one scalar T > 0 fitted on the validation split to
minimise the negative log-likelihood. It changes confidences, never the arg-max class.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64 (rows sum to 1)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0
                            ) -> float:
    """Mean cross-entropy of integer ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    log_probabilities = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), labels].mean())


def fit_temperature(
    logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """Return the T in ``bounds`` minimising the NLL of ``labels`` (golden-section on log T).

    The NLL is convex in 1/T, hence unimodal in log T, so a golden-section search finds the
    optimum without SciPy. Never returns a T with a higher NLL than T = 1.
    """
    labels = np.asarray(labels, dtype=np.int64)
    low, high = np.log(bounds[0]), np.log(bounds[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc = negative_log_likelihood(logits, labels, np.exp(c))
    fd = negative_log_likelihood(logits, labels, np.exp(d))
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = negative_log_likelihood(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = negative_log_likelihood(logits, labels, np.exp(d))
    best = float(np.exp((a + b) / 2.0))
    if negative_log_likelihood(logits, labels, best) > negative_log_likelihood(logits, labels):
        return 1.0
    return best


def reliability_bins(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15
) -> list[dict[str, float]]:
    """Per confidence bin (equal width on [0, 1]): count, mean confidence, accuracy."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Right-closed bins, (lo, hi], with 0 in the first: a confidence of exactly 1 is counted.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        members = index == b
        count = int(members.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else 0.0,
                "accuracy": float(correct[members].mean()) if count else 0.0,
            }
        )
    return bins


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, n_bins: int = 15
) -> float:
    """ECE: the count-weighted mean |accuracy − confidence| over equal-width bins."""
    bins = reliability_bins(probabilities, labels, n_bins)
    total = sum(b["count"] for b in bins)
    if total == 0:
        return 0.0
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / total)
