"""Serve the classifier: ``Classifier.load(path).predict(image) -> Prediction``.

This module is the only home of the decision rule: "Not assessable" if the image is nothing
the model can judge (``ml.assessability``: too small, not a radiograph, out of distribution,
undecodable), else the arg-max class if its (temperature-scaled) probability is at least τ,
else "Uncertain". It imports no TensorFlow: ``.tflite`` models run on LiteRT; a ``.keras``
model imports TensorFlow when it is loaded.

Bytes that cannot be decoded raise ``ImageDecodeError`` from ``predict`` and
``predict_batch``, as they always did; pass ``undecodable="refuse"`` to get a not-assessable
``Prediction`` (reason ``undecodable``) instead.

``Classifier.load`` resolves the model path (argument, else the ``MODEL_PATH`` environment
variable, else the demo model in ``ml/demo_model``) and keeps one instance per resolved path,
so every caller in a process shares one interpreter. Interpreter calls are serialised with a
lock, which makes the instance safe to share between threads.

The assessability check's one matrix product runs on one BLAS thread (``_one_blas_thread``,
set for the whole process the first time a prediction needs it):
OpenBLAS's default, a thread per core, made it cost 3–4× the CPU of the model itself in a
server whose other threads and processes already fill the cores (benchmarks/classification_job.py).
"""

from __future__ import annotations

import copy
import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ml import gradcam
from ml.assessability import UNDECODABLE, Limits
from ml.calibration import softmax
from ml.export import metadata_path, sha256_of
from ml.preprocessing import ImageDecodeError, decoded_pixels, prepare_rgb, scale_to_unit
from ml.runtime import ModelLoadError, Runner, open_runner

__all__ = ["DEMO_MODEL", "NOT_ASSESSABLE", "UNCERTAIN", "Classifier", "ImageDecodeError",
           "ModelLoadError", "Prediction", "decide", "refuse"]

UNCERTAIN = "Uncertain"
NOT_ASSESSABLE = "Not assessable"
DEMO_MODEL = Path(__file__).resolve().parent / "demo_model" / "model.tflite"
_REQUIRED_METADATA = ("classes", "input_size", "threshold", "temperature")


@dataclass(frozen=True)
class Prediction:
    """One image's result; ``label`` is ``top_class``, "Uncertain" or "Not assessable".

    ``label`` is a class only when the image is ``assessable`` and the top probability
    reaches ``threshold``; ``uncertain`` is True whenever it is not a class, so callers that
    only know ``uncertain`` never take a refused image's ``top_class`` for a finding. When not
    assessable, ``reason`` is one of ``ml.assessability.REASONS``; ``probabilities`` and
    ``top_class`` are still the model's (for transparency), except for an undecodable image,
    which has none (``{}`` and "").
    """

    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool
    threshold: float
    top_class: str
    assessable: bool = True
    reason: str | None = None


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


def refuse(prediction: Prediction, reason: str) -> Prediction:
    """The same result declared not assessable for ``reason``: no class is the label."""
    return replace(prediction, label=NOT_ASSESSABLE, uncertain=True, assessable=False,
                   reason=reason)


def _undecodable(threshold: float) -> Prediction:
    return Prediction(label=NOT_ASSESSABLE, confidence=0.0, probabilities={}, uncertain=True,
                      threshold=threshold, top_class="", assessable=False, reason=UNDECODABLE)


_blas_limited = False
_blas_lock = threading.Lock()


def _one_blas_thread() -> None:
    """Put NumPy's BLAS on one thread for the rest of the process (once).

    Process-wide and never restored, on purpose: setting the limit and restoring it around
    every check halved the FHIR read throughput of the gunicorn workers that classify in
    the background (benchmarks/load.py: read 58 % of the ceiling -> 29 %). A server has
    several processes on few cores, so one BLAS thread per process is what it wants anyway.
    """
    global _blas_limited
    with _blas_lock:
        if not _blas_limited:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=1, user_api="blas")
            _blas_limited = True


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

    def __init__(self, runner: Runner, metadata: dict, path: Path,
                 limits: Limits | None = None):
        self._runner = runner
        self.limits = limits  # None: the metadata has no assessability limits
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
        limits = None
        if metadata.get("assessability"):
            try:
                limits = Limits.from_metadata(metadata["assessability"], path)
            except (KeyError, ValueError) as err:
                raise ModelLoadError(f"{meta_file}: assessability limits unusable: {err}") from err
        return cls(runner, metadata, path, limits)

    @property
    def metadata(self) -> dict:
        """A copy of the model's metadata (JSON-serialisable)."""
        return copy.deepcopy(self._metadata)

    def _run(self, image: bytes | np.ndarray):
        """Run the model; return its outputs and the reason the image is not assessable.

        Raises:
            ImageDecodeError: the bytes or array are not an image.
        """
        pixels = decoded_pixels(image)
        rgb = prepare_rgb(pixels, self.input_size)
        with self._lock:
            outputs = self._runner.run(scale_to_unit(rgb)[None])
        if self.limits is None:
            return outputs, None
        _one_blas_thread()
        return outputs, self.limits.judge(pixels.shape, rgb, outputs[1])

    def model_input_and_features(self, image: bytes | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model's uint8 RGB input and its feature maps (h×w×C) for one image.

        These are what ``ml.assessability.fit`` fits the limits on.
        """
        rgb = prepare_rgb(image, self.input_size)
        with self._lock:
            _, features, _ = self._runner.run(scale_to_unit(rgb)[None])
        return rgb, np.asarray(features)

    def logits(self, image: bytes | np.ndarray) -> np.ndarray:
        """Raw logits (before temperature) for one image, in class order."""
        return np.asarray(self._run(image)[0][0], dtype=np.float64)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Temperature-scaled softmax of logits (any leading shape)."""
        return softmax(logits, self.temperature)

    def predict(
        self,
        image: bytes | np.ndarray,
        threshold: float | None = None,
        *,
        undecodable: Literal["raise", "refuse"] = "raise",
    ) -> Prediction:
        """Classify one image: encoded bytes (JPEG/PNG...) or an RGB / gray uint8 array.

        An image the model cannot judge gets ``label`` "Not assessable" and a ``reason``
        (limits from the model's metadata; a model without them judges every image).

        Raises:
            ImageDecodeError: the bytes or array are not an image, unless ``undecodable`` is
                "refuse", which returns a not-assessable Prediction (reason "undecodable").
        """
        tau = self.threshold if threshold is None else float(threshold)
        try:
            (logits, _, _), reason = self._run(image)
        except ImageDecodeError:
            if undecodable == "refuse":
                return _undecodable(tau)
            raise
        prediction = decide(self.probabilities(np.asarray(logits)), self.classes, tau)
        return prediction if reason is None else refuse(prediction, reason)

    def predict_batch(
        self,
        images: Iterable[bytes | np.ndarray],
        threshold: float | None = None,
        *,
        undecodable: Literal["raise", "refuse"] = "raise",
    ) -> list[Prediction]:
        """Classify several images (one interpreter call each: batch 1 is LiteRT's best).

        Raises:
            ImageDecodeError: as ``predict``; with ``undecodable="refuse"`` one bad image
                yields its not-assessable Prediction and the others are still classified.
        """
        return [self.predict(image, threshold, undecodable=undecodable) for image in images]

    def explain(
        self, image: bytes | np.ndarray, threshold: float | None = None
    ) -> tuple[Prediction, np.ndarray]:
        """Predict and compute the Grad-CAM heatmap of the top class in one model call.

        The heatmap is H×W (the model's input size), float32 in [0, 1]; turn it into an
        image with ``ml.gradcam.overlay_png(image, heatmap)``.
        """
        tau = self.threshold if threshold is None else float(threshold)
        (logits, features, weights), reason = self._run(image)
        prediction = decide(self.probabilities(np.asarray(logits)), self.classes, tau)
        top = self.classes.index(prediction.top_class)
        if reason is not None:
            prediction = refuse(prediction, reason)
        heatmap = gradcam.closed_form(features, weights[:, top])
        return prediction, gradcam.upsample(heatmap, self.input_size)

    def gradcam(self, image: bytes | np.ndarray, class_name: str | None = None) -> np.ndarray:
        """Grad-CAM heatmap (H×W float32 in [0, 1]) for ``class_name`` or the top class.

        Raises:
            ValueError: ``class_name`` is not one of the model's classes.
        """
        (logits, features, weights), _ = self._run(image)
        if class_name is None:
            index = int(np.argmax(logits))
        elif class_name in self.classes:
            index = self.classes.index(class_name)
        else:
            raise ValueError(f"unknown class {class_name!r}; the model knows {self.classes}")
        return gradcam.upsample(gradcam.closed_form(features, weights[:, index]), self.input_size)
