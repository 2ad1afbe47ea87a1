"""ml.data: folder-per-class discovery, the stratified split, its manifest, class weights."""

from __future__ import annotations

from collections import Counter

import pytest

from ml.data import (
    Sample,
    class_weights,
    discover,
    fold_splits,
    read_manifest,
    stratified_folds,
    stratified_split,
    write_manifest,
)


def samples(counts: dict[str, int]) -> list[Sample]:
    return [Sample(f"{label}/{i:04d}.jpg", label) for label, n in counts.items() for i in range(n)]


def test_split_is_stratified_70_15_15():
    split = stratified_split(samples({"A": 100, "B": 40, "C": 20}), seed=42)
    assert {name: dict(Counter(s.label for s in members)) for name, members in split.items()} == {
        "train": {"A": 70, "B": 28, "C": 14},
        "val": {"A": 15, "B": 6, "C": 3},
        "test": {"A": 15, "B": 6, "C": 3},
    }


def test_split_is_the_same_on_every_run_and_independent_of_input_order():
    data = samples({"A": 50, "B": 30})
    first = stratified_split(data, seed=42)
    assert stratified_split(list(reversed(data)), seed=42) == first
    assert stratified_split(data, seed=7) != first


def test_split_parts_are_disjoint_and_complete():
    data = samples({"A": 33, "B": 17})
    split = stratified_split(data, seed=42)
    paths = [s.path for members in split.values() for s in members]
    assert sorted(paths) == sorted(s.path for s in data)


def test_fractions_must_sum_to_one():
    with pytest.raises(ValueError):
        stratified_split(samples({"A": 10}), fractions=(0.7, 0.2, 0.2))


def test_folds_are_stratified_disjoint_complete_and_seeded():
    data = samples({"A": 52, "B": 20, "C": 7})
    folds = stratified_folds(data, k=5, seed=42)
    assert [dict(Counter(s.label for s in fold)) for fold in folds] == [
        {"A": 11, "B": 4, "C": 2}, {"A": 11, "B": 4, "C": 2}, {"A": 10, "B": 4, "C": 1},
        {"A": 10, "B": 4, "C": 1}, {"A": 10, "B": 4, "C": 1},
    ]
    assert sorted(s.path for fold in folds for s in fold) == sorted(s.path for s in data)
    assert stratified_folds(list(reversed(data)), k=5, seed=42) == folds
    assert stratified_folds(data, k=5, seed=7) != folds


def test_folds_refuse_a_class_smaller_than_the_fold_count():
    with pytest.raises(ValueError, match="class B has 3 images, fewer than the 5 folds"):
        stratified_folds(samples({"A": 10, "B": 3}), k=5)
    with pytest.raises(ValueError, match="at least 2 folds"):
        stratified_folds(samples({"A": 10}), k=1)


def test_each_round_tests_one_fold_validates_on_the_next_and_trains_on_the_rest():
    folds = stratified_folds(samples({"A": 20, "B": 10}), k=5)
    tested = []
    for index in range(5):
        split = fold_splits(folds, index)
        assert split["test"] == folds[index]
        assert split["val"] == folds[(index + 1) % 5]
        assert len(split["train"]) == 18
        paths = [s.path for members in split.values() for s in members]
        assert len(set(paths)) == len(paths) == 30
        tested += split["test"]
    assert len({s.path for s in tested}) == 30


def test_manifest_round_trips(tmp_path):
    split = stratified_split(samples({"A": 20, "B": 10}))
    write_manifest(tmp_path / "split.csv", split)
    assert read_manifest(tmp_path / "split.csv") == split
    assert (tmp_path / "split.csv").read_text().splitlines()[0] == "split,label,path"


def test_discover_lists_sorted_classes_with_relative_paths(tiny_dataset):
    classes, found = discover(tiny_dataset)
    assert classes == ["Alpha", "Beta", "Gamma"]
    assert found[0] == Sample("Alpha/alpha_000.png", "Alpha")
    assert len(found) == 60


def test_discover_refuses_an_empty_directory(tmp_path):
    with pytest.raises(ValueError, match="no images found"):
        discover(tmp_path)


def test_class_weights_are_balanced():
    weights = class_weights(["A"] * 30 + ["B"] * 10, ["A", "B"])
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})
    with pytest.raises(ValueError, match="C"):
        class_weights(["A"], ["A", "C"])
