"""Decide whether the classifier can judge an image at all, and if not, why not.

A classifier forced to choose among its classes calls anything a disease: an 8×8 solid red PNG
came out "COVID, 83 %". ``Limits.judge`` refuses such input with one reason, checked in this
order (``undecodable`` is decided earlier, by the decoder, see ``ml.infer``):

- ``too_small``: the shorter side is below ``min_side`` pixels. No training image was smaller
  than 189 px before it was resized to 256 (``../shared/data/cxr/MANIFEST.csv``) and the model
  sees 224×224; the default 128 allows a 1.75× enlargement, which is already more than any
  training image had (224 / 189 ≈ 1.19×), and a real radiograph is over 1,000 px.
- ``not_radiograph``: statistics no radiograph in the training split has, on the model's
  224×224 input: colour (mean spread between the RGB channels; every training image is gray),
  contrast (gray-level standard deviation: solid colours have none), roughness (mean absolute
  Laplacian over the standard deviation: noise and text are all edges, radiographs are smooth)
  the aspect ratio of the file (training originals span 0.76–2.59), and layout: a chest
  film shows a bright vertical band (spine and mediastinum) between two darker lung fields
  and is roughly symmetric left–right; a film turned by 90° or with inverted gray levels
  (a MONOCHROME1 image shown as MONOCHROME2) is not, and its features alone do not give it
  away (the pooled features barely change).
- ``out_of_distribution``: the class-conditional Mahalanobis distance (Lee et al., 2018) of the
  model's own pooled backbone features — the global average of the 7×7×1280 feature maps the
  served model already outputs for Grad-CAM — from the training split's class means, under
  one shared covariance shrunk with Ledoit–Wolf (1,280 dimensions, ~2,200 images). Its
  threshold is a quantile of the validation split's distances, so that at least 99 % of the
  validation images pass.

The limits are fitted by ``fit`` (``csss calibrate-assessability``) and stored in the model's
metadata (``assessability``) with a companion ``.npz`` (class means and the whitening matrix).
Serving needs NumPy and OpenCV only; fitting imports scikit-learn.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

TOO_SMALL = "too_small"
NOT_RADIOGRAPH = "not_radiograph"
OUT_OF_DISTRIBUTION = "out_of_distribution"
UNDECODABLE = "undecodable"
REASONS = (UNDECODABLE, TOO_SMALL, NOT_RADIOGRAPH, OUT_OF_DISTRIBUTION)
# Each reason in words for the doctor's page, the AI Observation and the report.
REASON_TEXT = {
    UNDECODABLE: "the image could not be decoded",
    TOO_SMALL: "the image is too small to judge",
    NOT_RADIOGRAPH: "the image does not look like a frontal chest radiograph",
    OUT_OF_DISTRIBUTION: "the image is unlike the chest radiographs the model was trained on",
}

DEFAULT_MIN_SIDE = 128
DEFAULT_MAX_ASPECT_RATIO = 3.0  # training originals: 2.59 at most (MANIFEST.csv)
OOD_PASS_RATE = 0.99
# Margins beyond the training split's extremes for the image statistics: those limits are a
# coarse first net (the Mahalanobis distance does the fine work), so they must not cost
# false alarms on real radiographs, e.g. a colour-encoded gray JPEG's chroma noise.
COLOUR_TOLERANCE = 10.0
CONTRAST_FACTOR = 0.5
ROUGHNESS_FACTOR = 1.5
# The layout score overlaps between upright and turned films, so its limit is a quantile of
# the training split: 0.5 % of it fall below. The weight of the symmetry term was chosen among
# 0, 1/4 and 1/2 on the validation split turned by 90° and inverted (1/4 flagged 96.5 % and
# 100 % of them, refusing 0.4 % of the untouched validation images).
LAYOUT_QUANTILE = 0.005
SYMMETRY_WEIGHT = 0.25


def image_statistics(rgb: np.ndarray) -> dict[str, float]:
    """Colour, contrast, roughness and layout of the model's uint8 RGB input (H×W×3).

    OpenCV throughout: the checks run on every request, and NumPy's reductions over the
    channel axis took 3 ms of the 25 ms budget.
    """
    red, green, blue = cv2.split(rgb)
    # max − min of three values is half the sum of their pairwise distances.
    spread = (cv2.mean(cv2.absdiff(red, green))[0] + cv2.mean(cv2.absdiff(green, blue))[0]
              + cv2.mean(cv2.absdiff(blue, red))[0])
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    _, deviation = cv2.meanStdDev(gray)
    contrast = float(deviation[0, 0])
    laplacian = cv2.norm(cv2.Laplacian(gray, cv2.CV_32F), cv2.NORM_L1) / gray.size
    return {"colour": spread / 2, "contrast": contrast,
            "roughness": float(laplacian) / (contrast + 1.0), "layout": layout_score(gray)}


def layout_score(gray: np.ndarray) -> float:
    """How much a gray image looks like an upright chest film (higher: more).

    The central band's brightness over the lung fields either side (rows 20–80 %, in
    standard deviations) plus a quarter of the left–right minus the top–bottom mirror
    correlation. Upright films score about 1.3 (median of the training split), films turned
    by 90° about −0.3, inverted ones about −1.2.
    """
    small = cv2.resize(gray.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
    scale = float(small.std()) + 1.0
    middle = small[13:51]
    lungs = np.concatenate([middle[:, 6:22].ravel(), middle[:, 42:58].ravel()])
    mediastinum = (float(middle[:, 26:38].mean()) - float(lungs.mean())) / scale
    z = (small - small.mean()) / scale
    symmetry = float((z * z[:, ::-1]).mean() - (z * z[::-1]).mean())
    return mediastinum + SYMMETRY_WEIGHT * symmetry


def pooled(features: np.ndarray) -> np.ndarray:
    """Global average of feature maps (…×h×w×C → …×C), as the model's ``pool`` layer does."""
    return np.asarray(features, dtype=np.float32).mean(axis=(-3, -2))


@dataclass(frozen=True)
class Limits:
    """The fitted limits of one model; ``judge`` applies them."""

    min_side: int
    max_aspect_ratio: float
    max_colour: float
    min_contrast: float
    max_roughness: float
    min_layout: float
    class_means: np.ndarray  # K×C, float32
    whitening: np.ndarray  # C×C lower-triangular L with precision = L Lᵀ, float32
    ood_threshold: float

    def distance(self, features: np.ndarray) -> float:
        """Squared Mahalanobis distance of pooled ``features`` to the nearest class mean."""
        centred = pooled(features)[None, :] - self.class_means
        return float(np.square(centred @ self.whitening).sum(axis=1).min())

    def judge(self, shape: Sequence[int], rgb: np.ndarray, features: np.ndarray) -> str | None:
        """The reason the image is not assessable, or None if it is.

        ``shape`` is the decoded image's (height, width, ...), ``rgb`` the model's uint8
        input and ``features`` the model's feature maps for it.
        """
        height, width = int(shape[0]), int(shape[1])
        if min(height, width) < self.min_side:
            return TOO_SMALL
        statistics = image_statistics(rgb)
        if (
            max(height, width) / min(height, width) > self.max_aspect_ratio
            or statistics["colour"] > self.max_colour
            or statistics["contrast"] < self.min_contrast
            or statistics["roughness"] > self.max_roughness
            or statistics["layout"] < self.min_layout
        ):
            return NOT_RADIOGRAPH
        if self.distance(features) > self.ood_threshold:
            return OUT_OF_DISTRIBUTION
        return None

    def to_metadata(self, statistics_file: str, statistics_sha256: str) -> dict:
        """The JSON part (the arrays go to ``statistics_file``, see ``save``)."""
        return {
            "statistics_file": statistics_file,
            "statistics_sha256": statistics_sha256,
            "min_side": self.min_side,
            "max_aspect_ratio": self.max_aspect_ratio,
            "max_colour": self.max_colour,
            "min_contrast": self.min_contrast,
            "max_roughness": self.max_roughness,
            "min_layout": self.min_layout,
            "ood_threshold": self.ood_threshold,
        }

    def save(self, model_path: str | Path) -> dict:
        """Write the arrays beside the model (``<model>.assessability.npz``); return the JSON.

        The arrays are compressed: the whitening matrix is triangular, half zeros.
        """
        target = Path(model_path).with_suffix(".assessability.npz")
        buffer = io.BytesIO()
        np.savez_compressed(buffer, class_means=self.class_means, whitening=self.whitening)
        target.write_bytes(buffer.getvalue())
        return self.to_metadata(target.name, hashlib.sha256(buffer.getvalue()).hexdigest())

    @classmethod
    def from_metadata(cls, metadata: dict, model_path: str | Path) -> Limits:
        """Load the limits that ``save`` wrote for the model at ``model_path``.

        Raises:
            ValueError: the statistics file is missing, altered or of the wrong shape.
        """
        target = Path(model_path).parent / metadata["statistics_file"]
        if not target.is_file():
            raise ValueError(
                f"assessability statistics {target} not found beside {model_path}; rerun "
                "`csss calibrate-assessability` or remove `assessability` from the metadata"
            )
        data = target.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != metadata["statistics_sha256"]:
            raise ValueError(
                f"{target} has sha256 {digest} but the metadata says "
                f"{metadata['statistics_sha256']}; rerun `csss calibrate-assessability`"
            )
        with np.load(io.BytesIO(data)) as arrays:
            class_means = arrays["class_means"].astype(np.float32)
            whitening = arrays["whitening"].astype(np.float32)
        if whitening.shape != (class_means.shape[1],) * 2:
            raise ValueError(
                f"{target}: whitening matrix {whitening.shape} does not match "
                f"{class_means.shape[1]} features"
            )
        return cls(
            min_side=int(metadata["min_side"]),
            max_aspect_ratio=float(metadata["max_aspect_ratio"]),
            max_colour=float(metadata["max_colour"]),
            min_contrast=float(metadata["min_contrast"]),
            max_roughness=float(metadata["max_roughness"]),
            min_layout=float(metadata["min_layout"]),
            class_means=class_means,
            whitening=whitening,
            ood_threshold=float(metadata["ood_threshold"]),
        )


@dataclass(frozen=True)
class Fitted:
    """``fit``'s result: the limits and the figures the model card shows."""

    limits: Limits
    shrinkage: float
    validation_statistics_pass_rate: float
    validation_pass_rate: float
    validation_distance_quantiles: dict[str, float]


def fit(
    train: Iterable[tuple[np.ndarray, np.ndarray, int]],
    validation: Iterable[tuple[np.ndarray, np.ndarray]],
    *,
    min_side: int = DEFAULT_MIN_SIDE,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
    pass_rate: float = OOD_PASS_RATE,
) -> Fitted:
    """Fit the limits from the model's inputs and features on the training split.

    Args:
        train: (uint8 RGB model input, feature maps, class index) per training image.
        validation: (uint8 RGB model input, feature maps) per validation image; the OOD
            threshold is the smallest distance that at least ``pass_rate`` of them stay
            within; the share passing the image-statistics limits is reported too.

    Raises:
        ValueError: a class has fewer than 2 training images.
    """
    from sklearn.covariance import LedoitWolf

    statistics, features, labels = [], [], []
    for rgb, maps, label in train:
        statistics.append(image_statistics(rgb))
        features.append(pooled(maps))
        labels.append(int(label))
    features_array, labels_array = np.stack(features).astype(np.float64), np.array(labels)
    classes = np.unique(labels_array)
    counts = np.bincount(labels_array)
    if (counts[classes] < 2).any():
        raise ValueError(f"every class needs at least 2 training images; counts {counts}")
    class_means = np.stack([features_array[labels_array == k].mean(axis=0) for k in classes])
    centred = features_array - class_means[np.searchsorted(classes, labels_array)]
    estimator = LedoitWolf(assume_centered=True).fit(centred)
    whitening = np.linalg.cholesky(estimator.precision_)
    limits = Limits(
        min_side=int(min_side),
        max_aspect_ratio=float(max_aspect_ratio),
        max_colour=max(s["colour"] for s in statistics) + COLOUR_TOLERANCE,
        min_contrast=CONTRAST_FACTOR * min(s["contrast"] for s in statistics),
        max_roughness=ROUGHNESS_FACTOR * max(s["roughness"] for s in statistics),
        min_layout=float(np.quantile([s["layout"] for s in statistics], LAYOUT_QUANTILE)),
        class_means=class_means.astype(np.float32),
        whitening=whitening.astype(np.float32),
        ood_threshold=0.0,
    )
    distances, statistics_pass = [], []
    for rgb, maps in validation:
        distances.append(limits.distance(maps))
        statistics_pass.append(limits.judge(rgb.shape, rgb, maps) != NOT_RADIOGRAPH)
    distances = np.array(distances)
    if distances.size == 0:
        raise ValueError("the validation split is empty; the OOD threshold needs it")
    ordered = np.sort(distances)
    threshold = float(ordered[min(len(ordered) - 1, int(np.ceil(pass_rate * len(ordered))) - 1)])
    return Fitted(
        limits=replace(limits, ood_threshold=threshold),
        shrinkage=float(estimator.shrinkage_),
        validation_statistics_pass_rate=float(np.mean(statistics_pass)),
        validation_pass_rate=float(np.mean(distances <= threshold)),
        validation_distance_quantiles={
            q: float(np.quantile(distances, float(q))) for q in ("0.5", "0.9", "0.99", "1.0")
        },
    )
