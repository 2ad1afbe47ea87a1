"""Fixtures for ml/ tests: tiny generated images and datasets (no shared data needed)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

CLASSES = ("Alpha", "Beta", "Gamma")
# Three real test-split radiographs (CC BY 4.0, see its README.md), one per pediatric class.
RADIOGRAPHS = Path(__file__).resolve().parent / "radiographs"


def make_image(label_index: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A grayscale uint8 image whose layout depends on the class: easy to learn."""
    image = rng.normal(60, 20, (size, size))
    if label_index == 0:
        image[: size // 2] += 120
    elif label_index == 1:
        image[size // 2 :] += 120
    else:
        image[:, ::4] += 120
    return np.clip(image, 0, 255).astype(np.uint8)


def write_dataset(root: Path, per_class: int, seed: int = 0, size: int = 32) -> Path:
    """Write a folder-per-class dataset of PNG files under ``root``."""
    rng = np.random.default_rng(seed)
    for index, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{name.lower()}_{i:03d}.png"), make_image(index, rng, size))
    return root


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes × 20 grayscale 32×32 PNGs."""
    return write_dataset(tmp_path_factory.mktemp("tiny") / "data", per_class=20)


@pytest.fixture
def png_bytes() -> bytes:
    """A 64×48 RGB PNG with distinct channels."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return encoded.tobytes()


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch):
    """The committed demo model, whatever MODEL_PATH the environment running the tests sets."""
    from ml.infer import Classifier

    monkeypatch.delenv("MODEL_PATH", raising=False)
    return Classifier.load()
