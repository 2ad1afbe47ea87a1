"""Folder-per-class datasets, the stratified split and its manifest, class weights.

A dataset is a directory with one sub-directory per class (the Kaggle layout)::

    DIR/COVID/xxx.jpg  DIR/Normal/yyy.png  ...

The split is written to a CSV manifest (``split,label,path`` with paths relative to DIR,
e.g. ``COVID/xxx.jpg``) so that evaluation can be repeated on exactly the same images.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    """One image: its path relative to the dataset directory (POSIX style) and its class."""

    path: str
    label: str


def discover(data_dir: str | Path) -> tuple[list[str], list[Sample]]:
    """List the classes (sorted sub-directory names) and the images of a dataset.

    Raises:
        FileNotFoundError: ``data_dir`` is not a directory.
        ValueError: no class directory holds an image.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset directory not found: {root}")
    samples: list[Sample] = []
    classes: list[str] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(
            p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if files:
            classes.append(class_dir.name)
            samples.extend(Sample(f"{class_dir.name}/{p.name}", class_dir.name) for p in files)
    if not samples:
        raise ValueError(
            f"no images found in {root}; expected one sub-directory per class holding "
            f"{', '.join(sorted(IMAGE_SUFFIXES))} files"
        )
    return classes, samples


def stratified_split(
    samples: Sequence[Sample],
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 42,
) -> dict[str, list[Sample]]:
    """Split samples into train/val/test, class by class, reproducibly.

    Each class's samples are sorted by path, shuffled with ``numpy.random.default_rng(seed)``
    and cut at the rounded fractions, so every class keeps its share in every split and the
    same input always yields the same split. Each split is returned sorted by path.
    """
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"fractions must be three numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda s: s.path)
        order = rng.permutation(len(members))
        n_train = round(fractions[0] * len(members))
        n_val = round(fractions[1] * len(members))
        cuts = {"train": order[:n_train], "val": order[n_train : n_train + n_val]}
        cuts["test"] = order[n_train + n_val :]
        for name, indices in cuts.items():
            splits[name].extend(members[i] for i in indices)
    return {name: sorted(members, key=lambda s: s.path) for name, members in splits.items()}


def stratified_folds(samples: Sequence[Sample], k: int = 5, seed: int = 42) -> list[list[Sample]]:
    """Deal samples into ``k`` folds, class by class, reproducibly (stratified k-fold).

    Each class's samples are sorted by path, shuffled with ``numpy.random.default_rng(seed)``
    and dealt round-robin, so fold sizes per class differ by at most one. Folds are sorted
    by path.

    Raises:
        ValueError: ``k`` < 2, or a class with fewer than ``k`` samples (a fold without it
            could not measure its sensitivity).
    """
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {k}")
    rng = np.random.default_rng(seed)
    folds: list[list[Sample]] = [[] for _ in range(k)]
    by_class: dict[str, list[Sample]] = {}
    for sample in samples:
        by_class.setdefault(sample.label, []).append(sample)
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda s: s.path)
        if len(members) < k:
            raise ValueError(
                f"class {label} has {len(members)} images, fewer than the {k} folds; "
                f"use fewer folds or add images"
            )
        for position, index in enumerate(rng.permutation(len(members))):
            folds[position % k].append(members[index])
    return [sorted(fold, key=lambda s: s.path) for fold in folds]


def fold_splits(folds: Sequence[Sequence[Sample]], index: int) -> dict[str, list[Sample]]:
    """Round ``index`` of cross-validation: test = that fold, val = the next, train = the rest.

    With 5 folds that is 60/20/20. The validation fold plays the part it has in ``train``
    (early stopping, the temperature), so the test fold is touched once, as in a single split.
    """
    k = len(folds)
    val = (index + 1) % k
    return {
        "train": sorted((s for i, fold in enumerate(folds) if i not in (index, val)
                         for s in fold), key=lambda s: s.path),
        "val": list(folds[val]),
        "test": list(folds[index]),
    }


def write_manifest(path: str | Path, splits: dict[str, list[Sample]]) -> None:
    """Write the split as CSV rows ``split,label,path``."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["split", "label", "path"])
        for name in SPLITS:
            for sample in splits.get(name, []):
                writer.writerow([name, sample.label, sample.path])


def read_manifest(path: str | Path) -> dict[str, list[Sample]]:
    """Read a manifest written by ``write_manifest``.

    Raises:
        ValueError: the file does not have the ``split,label,path`` columns.
    """
    splits: dict[str, list[Sample]] = {name: [] for name in SPLITS}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or {"split", "label", "path"} - set(reader.fieldnames):
            raise ValueError(f"{path} is not a split manifest (columns split,label,path)")
        for row in reader:
            splits.setdefault(row["split"], []).append(Sample(row["path"], row["label"]))
    return splits


def class_weights(labels: Iterable[str], classes: Sequence[str]) -> dict[int, float]:
    """Balanced class weights ``n / (K * n_c)`` keyed by class index (Keras's format)."""
    counts = Counter(labels)
    total = sum(counts.values())
    missing = [name for name in classes if counts[name] == 0]
    if missing:
        raise ValueError(f"classes with no training images: {', '.join(missing)}")
    return {i: total / (len(classes) * counts[name]) for i, name in enumerate(classes)}


def summarize(splits: dict[str, list[Sample]]) -> dict[str, dict[str, int]]:
    """Count images per split and class: ``{"train": {"COVID": 515, ...}, ...}``."""
    return {
        name: dict(sorted(Counter(s.label for s in members).items()))
        for name, members in splits.items()
    }
