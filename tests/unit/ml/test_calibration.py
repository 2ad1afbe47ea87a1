"""ml.calibration: softmax, temperature scaling and ECE."""

from __future__ import annotations

import numpy as np
import pytest

from ml.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax,
)


def overconfident_logits(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits that are right 70 % of the time but claim ~99 % confidence."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    predicted = np.where(rng.random(n) < 0.7, labels, (labels + 1) % 3)
    logits = rng.normal(0, 0.5, (n, 3))
    logits[np.arange(n), predicted] += 6.0
    return logits, labels


def test_softmax_rows_sum_to_one_and_temperature_flattens():
    logits = np.array([[2.0, 1.0, 0.0]])
    assert softmax(logits).sum() == pytest.approx(1.0)
    assert softmax(logits, 2.0).max() < softmax(logits).max()
    assert softmax(logits, 2.0).argmax() == softmax(logits).argmax()


def test_temperature_scaling_lowers_nll_and_ece_on_overconfident_logits():
    logits, labels = overconfident_logits()
    temperature = fit_temperature(logits, labels)
    assert temperature > 1.5
    assert negative_log_likelihood(logits, labels, temperature) < negative_log_likelihood(
        logits, labels
    )
    assert expected_calibration_error(softmax(logits, temperature), labels) < (
        expected_calibration_error(softmax(logits), labels)
    )


def test_fitted_temperature_is_the_nll_minimum():
    logits, labels = overconfident_logits(seed=1)
    best = fit_temperature(logits, labels)
    for nearby in (best * 0.95, best * 1.05):
        assert negative_log_likelihood(logits, labels, best) <= negative_log_likelihood(
            logits, labels, nearby
        )


def test_ece_of_a_known_case():
    # Two bins: confidence 0.9 with accuracy 0.5, confidence 0.6 with accuracy 1.0.
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0, 0])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(
        0.5 * abs(0.5 - 0.9) + 0.5 * abs(1.0 - 0.6)
    )
