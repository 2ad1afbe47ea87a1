"""Serve the classifier: ``Classifier.load(path).predict(image) -> Prediction``.

This module is the only home of the decision rule: the arg-max class if its (temperature-
scaled) probability is at least τ, else "Uncertain". It imports no TensorFlow: ``.tflite``
models run on LiteRT; a ``.keras`` model imports TensorFlow when it is loaded.

``Classifier.load`` resolves the model path (argument, else the ``MODEL_PATH`` environment
variable, else the demo model in ``ml/demo_model``) and keeps one instance per resolved path,
so every caller in a process shares one interpreter. Interpreter calls are serialised with a
lock, which makes the instance safe to share between threads.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml import gradcam
from ml.calibration import softmax
from ml.export import metadata_path, sha256_of
from ml.preprocessing import ImageDecodeError, preprocess
from ml.runtime import ModelLoadError, Runner, open_runner

__all__ = ["DEMO_MODEL", "UNCERTAIN", "Classifier", "ImageDecodeError", "ModelLoadError",
           "Prediction", "decide"]

UNCERTAIN = "Uncertain"
DEMO_MODEL = Path(__file__).resolve().parent / "demo_model" / "model.tflite"
_REQUIRED_METADATA = ("classes", "input_size", "threshold", "temperature")


@dataclass(frozen=True)
class Prediction:
    """One image's result; ``label`` is ``top_class`` or "Uncertain" (below ``threshold``)."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    threshold: float
    top_class: str


def decide(probabilities: np.ndarray, classes: Sequence[str], threshold: float) -> Prediction:
    """Apply the decision rule to one probability vector (the rule's only implementation)."""
    top = int(np.argmax(probabilities))
    confidence = float(probabilities[top])
    uncertain = confidence < threshold
    return Prediction(
        label=UNCERTAIN if uncertain else classes[top],
        confidence=confidence,
        probabilities={name: float(p) for name, p in zip(classes, probabilities, strict=True)},
        uncertain=uncertain,
        threshold=float(threshold),
        top_class=classes[top],
    )


def _resolve(path: str | Path | None) -> Path:
    if path is None or str(path) == "":
        path = os.environ.get("MODEL_PATH") or DEMO_MODEL
    resolved = Path(path).expanduser().resolve()
    if resolved.is_dir():
        for name in ("model.tflite", "model.keras"):
            if (resolved / name).is_file():
                return resolved / name
        raise ModelLoadError(f"{resolved} holds neither model.tflite nor model.keras")
    if not resolved.is_file():
        raise ModelLoadError(f"model file not found: {resolved} (check MODEL_PATH)")
    return resolved


class Classifier:
    """A loaded model with its metadata; obtain one with ``Classifier.load``."""

    _instances: dict[Path, Classifier] = {}
    _instances_lock = threading.Lock()

    def __init__(self, runner: Runner, metadata: dict, path: Path):
        self._runner = runner
        self._metadata = metadata
        self._lock = threading.Lock()
        self.path = path
        self.classes: tuple[str, ...] = tuple(metadata["classes"])
        self.input_size: tuple[int, int] = tuple(int(v) for v in metadata["input_size"])
        self.threshold = float(metadata["threshold"])
        self.temperature = float(metadata["temperature"])

    @classmethod
    def load(cls, path: str | Path | None = None) -> Classifier:
        """Load (once per resolved path) the model at ``path``, ``MODEL_PATH`` or the demo.

        ``path`` may be a ``.tflite`` or ``.keras`` file (metadata: the same name with
        ``.json``) or a directory holding ``model.tflite`` or ``model.keras``.

        Raises:
            ModelLoadError: missing file or metadata, a sha256 that does not match the file,
                or metadata that disagrees with the model's shapes.
        """
        resolved = _resolve(path)
        with cls._instances_lock:
            instance = cls._instances.get(resolved)
            if instance is None:
                instance = cls._open(resolved)
                cls._instances[resolved] = instance
            return instance

    @classmethod
    def _open(cls, path: Path) -> Classifier:
        meta_file = metadata_path(path)
        try:
            metadata = json.loads(meta_file.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise ModelLoadError(f"model metadata {meta_file} not found beside {path}") from err
        except json.JSONDecodeError as err:
            raise ModelLoadError(f"model metadata {meta_file} is not valid JSON: {err}") from err
        missing = [key for key in _REQUIRED_METADATA if key not in metadata]
        if missing:
            raise ModelLoadError(f"model metadata {meta_file} lacks {', '.join(missing)}")
        digest = sha256_of(path)
        if metadata.get("sha256") and metadata["sha256"] != digest:
            raise ModelLoadError(
                f"{path} has sha256 {digest} but its metadata says {metadata['sha256']}; "
                "the model file and its metadata do not belong together (re-export the model)"
            )
        metadata["sha256"] = digest
        runner = open_runner(path)
        if runner.num_classes != len(metadata["classes"]):
            raise ModelLoadError(
                f"{path} outputs {runner.num_classes} classes but its metadata lists "
                f"{len(metadata['classes'])}"
            )
        if list(runner.input_size) != [int(v) for v in metadata["input_size"]]:
            raise ModelLoadError(
                f"{path} takes {runner.input_size} input but its metadata says "
                f"{metadata['input_size']}"
            )
        return cls(runner, metadata, path)

    @property
    def metadata(self) -> dict:
        """A copy of the model's metadata (JSON-serialisable)."""
        return copy.deepcopy(self._metadata)

    def _run(self, image: bytes | np.ndarray):
        batch = preprocess(image, self.input_size)[None]
        with self._lock:
            return self._runner.run(batch)

    def logits(self, image: bytes | np.ndarray) -> np.ndarray:
        """Raw logits (before temperature) for one image, in class order."""
        return np.asarray(self._run(image)[0], dtype=np.float64)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-scaled softmax of logits (any leading shape)."""
        return softmax(logits, self.temperature)

    def predict(self, image: bytes | np.ndarray, threshold: float | None = None) -> Prediction:
        """Classify one image: encoded bytes (JPEG/PNG...) or an RGB / gray uint8 array.

        Raises:
            ImageDecodeError: the bytes or array are not an image.
        """
        tau = self.threshold if threshold is None else float(threshold)
        return decide(self.probabilities(self.logits(image)), self.classes, tau)

    def predict_batch(
        self, images: Iterable[bytes | np.ndarray], threshold: float | None = None
    ) -> list[Prediction]:
        """Classify several images (one interpreter call each: batch 1 is LiteRT's best)."""
        return [self.predict(image, threshold) for image in images]

    def explain(
        self, image: bytes | np.ndarray, threshold: float | None = None
    ) -> tuple[Prediction, np.ndarray]:
        """Predict and compute the Grad-CAM heatmap of the top class in one model call.

        The heatmap is H×W (the model's input size), float32 in [0, 1]; turn it into an
        image with ``ml.gradcam.overlay_png(image, heatmap)``.
        """
        tau = self.threshold if threshold is None else float(threshold)
        logits, features, weights = self._run(image)
        prediction = decide(self.probabilities(np.asarray(logits)), self.classes, tau)
        top = self.classes.index(prediction.top_class)
        heatmap = gradcam.closed_form(features, weights[:, top])
        return prediction, gradcam.upsample(heatmap, self.input_size)

    def gradcam(self, image: bytes | np.ndarray, class_name: str | None = None) -> np.ndarray:
        """Grad-CAM heatmap (H×W float32 in [0, 1]) for ``class_name`` or the top class.

        Raises:
            ValueError: ``class_name`` is not one of the model's classes.
        """
        logits, features, weights = self._run(image)
        if class_name is None:
            index = int(np.argmax(logits))
        elif class_name in self.classes:
            index = self.classes.index(class_name)
        else:
            raise ValueError(f"unknown class {class_name!r}; the model knows {self.classes}")
        return gradcam.upsample(gradcam.closed_form(features, weights[:, index]), self.input_size)
