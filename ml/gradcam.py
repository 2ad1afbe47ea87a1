"""Grad-CAM for the predicted class: closed form (served), autodiff (reference), overlay PNG.

For this head (GAP → Dense(ReLU) → Dense) the gradient of a logit with respect to the last
feature maps is the same at every position and follows in closed form from the head's weights
(``ml.model.GradCamWeights``), so the LiteRT model serves Grad-CAM without autodiff. The
TensorFlow version below computes the textbook definition with a GradientTape; the tests check
that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import keras


def _normalise(cam: np.ndarray) -> np.ndarray:
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max())
    if peak <= 0.0:
        return np.zeros(cam.shape, dtype=np.float32)
    return (cam / peak).astype(np.float32)


def closed_form(features: np.ndarray, channel_weights: np.ndarray) -> np.ndarray:
    """Grad-CAM heatmap (h×w in [0, 1]) from feature maps (h×w×C) and weights (C,).

    ``ReLU(Σ_k α_k A^k)`` scaled so that its maximum is 1 (all zeros if nothing is positive).
    """
    cam = np.tensordot(features.astype(np.float64), channel_weights.astype(np.float64), axes=1)
    return _normalise(cam)


def autodiff(model: keras.Model, image: np.ndarray, class_index: int) -> np.ndarray:
    """Textbook Grad-CAM with TensorFlow: α_k = mean over positions of ∂logit_c / ∂A^k.

    ``model`` is a classifier from ``ml.model.build_classifier``; ``image`` one preprocessed
    H×W×3 float32 image. Returns the h×w heatmap at feature-map resolution.
    """
    import tensorflow as tf

    from ml.model import serving_model

    serving = serving_model(model)
    # A model whose outputs are (logits, features) computed from the same forward pass.
    probe = tf.keras.Model(serving.input, serving.outputs[:2])
    batch = tf.convert_to_tensor(image[None].astype(np.float32))
    with tf.GradientTape() as tape:
        logits, features = probe(batch, training=False)
        score = logits[:, class_index]
    gradients = tape.gradient(score, features)[0].numpy()
    alpha = gradients.mean(axis=(0, 1))
    return closed_form(features[0].numpy(), alpha)


def upsample(heatmap: np.ndarray, size: Sequence[int]) -> np.ndarray:
    """Resize a heatmap bilinearly to (height, width), staying in [0, 1]."""
    resized = cv2.resize(
        heatmap.astype(np.float32), (int(size[1]), int(size[0])), interpolation=cv2.INTER_LINEAR
    )
    return np.clip(resized, 0.0, 1.0)


def overlay_png(
    image: bytes | np.ndarray, heatmap: np.ndarray, *, opacity: float = 0.4, max_side: int = 512
) -> bytes:
    """Blend a JET-coloured heatmap over the image and encode it as PNG bytes.

    ``image`` is what was classified (encoded bytes or an RGB/gray uint8 array); it is shown
    at its own aspect ratio, scaled down so that its longer side is at most ``max_side``.
    """
    from ml.preprocessing import decode_image, prepare_rgb

    pixels = decode_image(image) if isinstance(image, bytes | bytearray | memoryview) else image
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    rgb = prepare_rgb(pixels, size)
    heat = (upsample(heatmap, size) * 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = cv2.addWeighted(rgb, 1.0 - opacity, colour, opacity, 0.0)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(blended, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 RGB image
        raise RuntimeError("OpenCV failed to encode the Grad-CAM overlay")
    return encoded.tobytes()
