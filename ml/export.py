"""Export a trained ``.keras`` classifier to the LiteRT (``.tflite``) serving artifact.

The ``.tflite`` has one input (1×H×W×3, RGB float32 in [0, 1]) and three outputs, found by
rank in ``ml.runtime``: the logits (1×K), the last conv feature maps (1×h×w×C) and the closed-
form Grad-CAM weights (1×C×K). Beside it: ``model.json`` (metadata, incl. the file's sha256)
and, when the training run wrote one, the split manifest ``split.csv``.

Three weight formats: float16 (the default), float32, and int8 post-training quantisation
(weights and activations, calibrated on training images; the input and the outputs stay
float32, so serving does not change).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata_path(model_path: str | Path) -> Path:
    """Where a model file's metadata lives: the same name with ``.json``."""
    return Path(model_path).with_suffix(".json")


def convert_to_tflite(
    model: keras.Model, *, fp16: bool = True, int8_calibration: Iterable[np.ndarray] | None = None
) -> bytes:
    """Convert a classifier (``ml.model.build_classifier``) to a serving ``.tflite``.

    ``fp16`` stores the weights as float16 (half the size; LiteRT computes in float32, and
    probabilities move by about 1e-3); ``fp16=False`` keeps float32 and matches Keras to ~1e-6.
    ``int8_calibration`` (model inputs, H×W×3 float32 in [0, 1], e.g. training images) asks
    for int8 weights and activations instead, their ranges measured on those images; ``fp16``
    is then ignored. Operations without an int8 kernel stay float.
    """
    import tensorflow as tf

    from ml.model import serving_model

    # from_keras_model freezes the variables; from_concrete_functions with a Keras 3 model
    # silently left them as uninitialised resources (NaN outputs, a 190 kB file).
    converter = tf.lite.TFLiteConverter.from_keras_model(serving_model(model))
    if int8_calibration is not None:
        images = [np.asarray(image, dtype=np.float32) for image in int8_calibration]
        if not images:
            raise ValueError("int8 quantisation needs at least one calibration image")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([image[None]] for image in images)
    elif fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def export(
    model_path: str | Path,
    out_dir: str | Path,
    *,
    fp16: bool = True,
    int8_calibration: Iterable[np.ndarray] | None = None,
    extra_metadata: dict | None = None,
    name: str = "model",
) -> Path:
    """Write ``out_dir/<name>.tflite``, its metadata JSON and the split manifest.

    ``int8_calibration``: see ``convert_to_tflite``; the metadata's ``format`` says
    ``tflite-int8`` and ``quantization`` how many images calibrated it.

    The metadata is the training run's (``<model>.json`` beside ``model_path``) updated with
    ``extra_metadata`` (top-level keys replace, nested dicts merge one level deep), the
    format and the sha256 of the ``.tflite`` file. Returns the ``.tflite`` path.

    Raises:
        FileNotFoundError: the model or its metadata JSON is missing.
    """
    import keras

    model_path = Path(model_path)
    source_metadata = metadata_path(model_path)
    if not source_metadata.is_file():
        raise FileNotFoundError(
            f"metadata {source_metadata} not found; export a model written by `csss train`"
        )
    metadata = json.loads(source_metadata.read_text())
    for key, value in (extra_metadata or {}).items():
        if isinstance(value, dict) and isinstance(metadata.get(key), dict):
            metadata[key] = {**metadata[key], **value}
        else:
            metadata[key] = value
    model = keras.saving.load_model(model_path, compile=False)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.tflite"
    if int8_calibration is not None:
        images = list(int8_calibration)
        target.write_bytes(convert_to_tflite(model, int8_calibration=images))
        metadata["format"] = "tflite-int8"
        metadata["quantization"] = {
            "method": "post-training int8 (weights and activations), float32 input/outputs",
            "calibration_images": len(images),
        }
    else:
        target.write_bytes(convert_to_tflite(model, fp16=fp16))
        metadata["format"] = "tflite-fp16-weights" if fp16 else "tflite-fp32"
        metadata.pop("quantization", None)
    metadata["sha256"] = sha256_of(target)
    metadata_path(target).write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n")
    manifest = model_path.parent / "split.csv"
    if manifest.is_file() and manifest.resolve() != (out / "split.csv").resolve():
        shutil.copyfile(manifest, out / "split.csv")
    log.info("exported %s (%d bytes)", target, target.stat().st_size)
    return target
