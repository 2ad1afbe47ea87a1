"""Run an exported model: LiteRT for ``.tflite`` files, TensorFlow for ``.keras`` files.

Both runners take one preprocessed image (1×H×W×3 float32) and return the serving outputs of
``ml.model.serving_model``: logits (K,), feature maps (h, w, C), Grad-CAM weights (C, K).
Neither is thread-safe; ``ml.infer.Classifier`` serialises calls with a lock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np


class ModelLoadError(RuntimeError):
    """The model file cannot be served (missing, unreadable, or inconsistent metadata)."""


class Runner(Protocol):
    input_size: tuple[int, int]
    num_classes: int

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def default_num_threads() -> int:
    """CPU threads for one interpreter: the cores this process may use, at most 4.

    Measured on 2 cores (benchmarks/inference.py): 2 threads halve MobileNetV2's latency;
    more than 4 gains little at batch 1 and competes with other workers.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


class LiteRTRunner:
    """Serve a ``.tflite`` model with ``ai_edge_litert`` (no TensorFlow needed)."""

    def __init__(self, path: Path, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(
                model_path=str(path), num_threads=num_threads or default_num_threads()
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelLoadError(f"LiteRT cannot load {path}: {err}") from err
        inputs = self._interpreter.get_input_details()
        outputs = {len(d["shape"]): d for d in self._interpreter.get_output_details()}
        if len(inputs) != 1 or sorted(outputs) != [2, 3, 4]:
            raise ModelLoadError(
                f"{path} has {len(inputs)} input(s) and outputs of rank {sorted(outputs)}; "
                "expected 1 input and outputs logits (rank 2), Grad-CAM weights (rank 3) and "
                "feature maps (rank 4): export it with `csss export`"
            )
        self._input = inputs[0]["index"]
        self._outputs = [outputs[2]["index"], outputs[4]["index"], outputs[3]["index"]]
        shape = inputs[0]["shape"]
        self.input_size = (int(shape[1]), int(shape[2]))
        self.num_classes = int(outputs[2]["shape"][-1])

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self._interpreter.set_tensor(self._input, batch)
        self._interpreter.invoke()
        logits, features, weights = (self._interpreter.get_tensor(i)[0] for i in self._outputs)
        return logits, features, weights


class KerasRunner:
    """Serve a ``.keras`` model with TensorFlow (imported here, only for this format)."""

    def __init__(self, path: Path):
        try:
            import keras
        except ImportError as err:
            raise ModelLoadError(
                f"{path} is a .keras model, which needs TensorFlow; install the `ml` extra "
                "or export it to .tflite with `csss export`"
            ) from err
        from ml.model import serving_model

        try:
            model = keras.saving.load_model(path, compile=False)
        except (ValueError, OSError) as err:
            raise ModelLoadError(f"Keras cannot load {path}: {err}") from err
        self.model = model
        self._serving = serving_model(model)
        shape = model.input.shape
        self.input_size = (int(shape[1]), int(shape[2]))
        self.num_classes = int(model.output.shape[-1])

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        logits, features, weights = self._serving(batch, training=False)
        return tuple(np.asarray(t)[0] for t in (logits, features, weights))


def open_runner(path: Path) -> Runner:
    """Pick the runner for a model file by its suffix.

    Raises:
        ModelLoadError: an unknown suffix or a model the runner cannot load.
    """
    if path.suffix == ".tflite":
        return LiteRTRunner(path)
    if path.suffix == ".keras":
        return KerasRunner(path)
    raise ModelLoadError(f"{path}: unknown model format; expected a .tflite or .keras file")
