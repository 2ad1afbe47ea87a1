"""Train the classifier: the paper's recipe, optionally followed by fine-tuning.

Recipes (``TrainingConfig.recipe``):

- ``paper``: frozen backbone, Adam 1e-4, cross-entropy, batch 16, at most 15 epochs,
  EarlyStopping(val_loss, patience 3, restore best), balanced class weights, augmentation
  (rotation 10°, zoom 0.1, horizontal flip) as Keras preprocessing layers in ``tf.data``.
- ``finetune``: ``paper`` first, then the backbone's 7×7 stage (blocks 14–16 and Conv_1) is
  unfrozen, BatchNormalization kept frozen, and trained at 1e-5 with the same stopping rule.

Augmentation (``TrainingConfig.augment``): ``all`` (the paper), ``finetune`` (fine-tune phase
only) or ``none``. A phase without augmentation takes the fast path: every epoch sees the same
frozen activations, so they are computed once and cached (``cache_dir``) at the fine-tune cut
(block 13's output, 7×7×160). The head then trains on pooled 1280-d features, and a fine-tune
phase without augmentation trains blocks 14–16 + head on the cached 7×7 maps. The models
trained there share their layers with the full model, so no weights are copied.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ml.data import Sample, class_weights, discover, stratified_split, summarize, write_manifest
from ml.preprocessing import prepare_rgb

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

log = logging.getLogger(__name__)

RECIPES = ("paper", "finetune")
AUGMENT_MODES = ("all", "finetune", "none")


@dataclass(frozen=True)
class TrainingConfig:
    """Hyper-parameters; the defaults are the seed paper's."""

    recipe: str = "finetune"
    augment: str = "all"  # "all", "finetune" (fine-tune phase only) or "none"
    epochs: int = 15
    batch_size: int = 16
    learning_rate: float = 1e-4
    patience: int = 3
    finetune_epochs: int = 15
    finetune_learning_rate: float = 1e-5
    finetune_from: str = "block_14_expand"
    seed: int = 42
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    input_size: tuple[int, int] = (224, 224)
    alpha: float = 1.0
    threshold: float = 0.75
    cache_dir: str | None = None
    verbose: int = 1


@dataclass(frozen=True)
class TrainingResult:
    """What ``train`` wrote and measured."""

    model_path: Path
    metadata: dict
    history: dict[str, list[dict[str, float]]]
    timings: dict[str, float] = field(default_factory=dict)


def load_images(
    data_dir: Path, samples: Sequence[Sample], size: Sequence[int], progress: bool = True
) -> np.ndarray:
    """Read and prepare (decode → RGB → resize) every sample: uint8 (N, H, W, 3)."""
    from tqdm import tqdm

    images = np.empty((len(samples), int(size[0]), int(size[1]), 3), dtype=np.uint8)
    for i, sample in enumerate(tqdm(samples, desc="images", unit="img", disable=not progress)):
        images[i] = prepare_rgb((data_dir / sample.path).read_bytes(), size)
    return images


def _augmenter(seed: int):
    import keras

    # The paper's ImageDataGenerator(rotation_range=10, zoom_range=0.1, horizontal_flip=True),
    # fill mode "nearest" as there. RandomRotation's factor is a fraction of a full turn.
    return keras.Sequential(
        [
            keras.layers.RandomRotation(10 / 360, fill_mode="nearest", seed=seed),
            keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed + 1),
            keras.layers.RandomFlip("horizontal", seed=seed + 2),
        ],
        name="augmentation",
    )


def _image_dataset(images: np.ndarray, labels: np.ndarray, batch_size: int, *,
                   shuffle_seed: int | None = None,
                   augmenter: keras.layers.Layer | None = None) -> tf.data.Dataset:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle_seed is not None:
        ds = ds.shuffle(len(images), seed=shuffle_seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    # Same scaling as ml.preprocessing.scale_to_unit: float32 / 255.
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    if augmenter is not None:
        ds = ds.map(lambda x, y: (augmenter(x, training=True), y))
    return ds.prefetch(tf.data.AUTOTUNE)


def _best_model_saver(model: keras.Model, path: Path) -> keras.callbacks.Callback:
    """A Keras callback that saves ``model`` whenever val_loss improves on every earlier epoch.

    One instance serves all phases, so ``path`` ends up holding the best model of the run even
    while a head-only or top-only model is the one being fitted (they share its layers).
    """
    import keras

    class BestModelSaver(keras.callbacks.Callback):
        best = np.inf

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            loss = (logs or {}).get("val_loss", np.inf)
            if loss < self.best:
                self.best = loss
                model.save(path)

    return BestModelSaver()


def fit_phase(trainable: keras.Model, x_train: np.ndarray | tf.data.Dataset,
              y_train: np.ndarray | None, validation: tuple | tf.data.Dataset, *, epochs: int,
              learning_rate: float, config: TrainingConfig, weights: np.ndarray | None,
              callbacks: list, phase: str) -> dict:
    """Compile and fit one phase with Adam, cross-entropy and EarlyStopping(restore best).

    ``x_train`` is an array (with ``y_train``) or a ``tf.data`` dataset of (x, y) batches.
    Returns ``{"epochs": [per-epoch logs], "best_epoch": 1-based epoch with least val_loss}``.
    """
    import keras

    trainable.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=config.patience, restore_best_weights=True,
        verbose=config.verbose,
    )
    if isinstance(x_train, np.ndarray):
        fit_args = {"x": x_train, "y": y_train, "batch_size": config.batch_size, "shuffle": True}
    else:
        fit_args = {"x": x_train}
    log.info("training phase %s", phase)
    history = trainable.fit(
        **fit_args,
        validation_data=validation,
        epochs=epochs,
        class_weight=weights,
        callbacks=[stopper, *callbacks],
        verbose=config.verbose,
    )
    epochs_run = [
        {key: float(values[i]) for key, values in history.history.items()}
        for i in range(len(history.history["loss"]))
    ]
    best = int(np.argmin([e["val_loss"] for e in epochs_run]))
    return {"epochs": epochs_run, "best_epoch": best + 1}


def _keep_better(model: keras.Model, before: list, history: dict[str, dict]) -> None:
    """Undo fine-tuning if no fine-tune epoch beat the paper phase's best val_loss.

    EarlyStopping restores the best epoch *of its own run*; without this, a fine-tune run
    whose every epoch is worse would still replace the better frozen-backbone weights.
    """
    paper_best = min(e["val_loss"] for e in history["paper"]["epochs"])
    finetune_best = min(e["val_loss"] for e in history["finetune"]["epochs"])
    history["finetune"]["kept"] = finetune_best < paper_best
    if not history["finetune"]["kept"]:
        log.info("fine-tuning did not improve val_loss (%.4f >= %.4f); keeping the paper phase",
                 finetune_best, paper_best)
        model.set_weights(before)


def _cache_key(weights: Path | None, samples: Sequence[Sample], config: TrainingConfig) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([list(config.input_size), config.alpha]).encode())
    digest.update("\n".join(s.path for s in samples).encode())
    if weights is not None:
        digest.update(hashlib.sha256(weights.read_bytes()).digest())
    return digest.hexdigest()[:16]


def _cut_features(model: keras.Model, images: np.ndarray, samples: Sequence[Sample],
                  data_dir: Path, config: TrainingConfig, weights_path: Path | None
                  ) -> np.ndarray:
    """Block-13 activations of every image, from the cache when present."""
    import keras

    from ml.model import BACKBONE, FINETUNE_CUT

    cache = None
    if config.cache_dir:
        Path(config.cache_dir).mkdir(parents=True, exist_ok=True)
        key = _cache_key(weights_path, samples, config)
        cache = Path(config.cache_dir) / f"features-{key}.npy"
        if cache.is_file():
            log.info("using cached features %s", cache)
            return np.load(cache)
    backbone = model.get_layer(BACKBONE)
    lower = keras.Model(backbone.input, backbone.get_layer(FINETUNE_CUT).output)
    image = keras.Input(shape=images.shape[1:], dtype="float32")
    extractor = keras.Model(image, lower(model.get_layer("to_backbone_range")(image)))
    features = extractor.predict(
        _image_dataset(images, np.zeros(len(images)), 32).map(lambda x, y: x),
        verbose=config.verbose,
    )
    if cache is not None:
        np.save(cache, features)
    return features


def train(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    backbone_weights: str | Path | None,
    config: TrainingConfig | None = None,
    on_metadata: Callable[[dict], dict] | None = None,
    splits: dict[str, list[Sample]] | None = None,
) -> TrainingResult:
    """Train on a folder-per-class dataset; write the model, split, metrics and curves.

    ``splits`` (train/val/test samples, e.g. a cross-validation round from
    ``ml.data.fold_splits``) replaces the seeded 70/15/15 split.

    Writes to ``out_dir``: ``split.csv`` (manifest), ``checkpoint.keras`` (best so far),
    ``model.keras`` and ``model.json`` (metadata, incl. temperature and test metrics),
    ``history.json``, ``curves.png``, and the test split's evaluation as ``csss evaluate``
    writes it (``metrics.json``, ``summary.md``, plots).

    Raises:
        ValueError: unknown recipe, or a class without training images.
    """
    import keras

    from ml import evaluation, model_card
    from ml.calibration import fit_temperature, softmax
    from ml.model import BACKBONE, FINETUNE_CUT, build_classifier, unfreeze_top

    config = config or TrainingConfig()
    if config.recipe not in RECIPES:
        raise ValueError(f"unknown recipe {config.recipe!r}; choose one of {', '.join(RECIPES)}")
    if config.augment not in AUGMENT_MODES:
        raise ValueError(
            f"unknown augment mode {config.augment!r}; choose one of {', '.join(AUGMENT_MODES)}"
        )
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = Path(backbone_weights) if backbone_weights is not None else None
    timings: dict[str, float] = {}
    started = time.perf_counter()
    keras.utils.set_random_seed(config.seed)

    classes, samples = discover(data_dir)
    if splits is None:
        splits = stratified_split(samples, config.fractions, config.seed)
    write_manifest(out_dir / "split.csv", splits)
    index = {name: i for i, name in enumerate(classes)}
    labels = {name: np.array([index[s.label] for s in members], dtype=np.int64)
              for name, members in splits.items()}
    weights = class_weights((s.label for s in splits["train"]), classes)

    tick = time.perf_counter()
    progress = config.verbose > 0
    images = {name: load_images(data_dir, members, config.input_size, progress)
              for name, members in splits.items()}
    timings["load_images_s"] = time.perf_counter() - tick

    model = build_classifier(
        len(classes), weights=weights_path, input_size=config.input_size, alpha=config.alpha
    )
    checkpoint = _best_model_saver(model, out_dir / "checkpoint.keras")
    history: dict[str, dict] = {}

    augment_paper = config.augment == "all"
    augment_finetune = config.augment in ("all", "finetune")
    if augment_paper or (augment_finetune and config.recipe == "finetune"):
        train_ds = _image_dataset(images["train"], labels["train"], config.batch_size,
                                  shuffle_seed=config.seed, augmenter=_augmenter(config.seed))
        val_ds = _image_dataset(images["val"], labels["val"], config.batch_size)

    backbone = model.get_layer(BACKBONE)
    head_layers = [model.get_layer(n) for n in ("pool", "hidden", "logits", "probabilities")]
    top = keras.Model(backbone.get_layer(FINETUNE_CUT).output, backbone.output)
    cut_train = cut_val = None
    if not augment_paper or (config.recipe == "finetune" and not augment_finetune):
        if not augment_finetune and config.recipe == "finetune":
            names = [layer.name for layer in backbone.layers]
            if names.index(config.finetune_from) <= names.index(FINETUNE_CUT):
                raise ValueError(
                    f"without augmentation the backbone is cached up to {FINETUNE_CUT}, so "
                    f"fine-tuning can start at block_14_expand at the earliest, not "
                    f"{config.finetune_from}; augment the fine-tune phase to go deeper"
                )
        tick = time.perf_counter()
        ordered = [s for name in ("train", "val") for s in splits[name]]
        cut = _cut_features(
            model, np.concatenate([images["train"], images["val"]]), ordered, data_dir,
            config, weights_path,
        )
        cut_train, cut_val = cut[: len(splits["train"])], cut[len(splits["train"]) :]
        timings["cache_features_s"] = time.perf_counter() - tick

    tick = time.perf_counter()
    if augment_paper:
        history["paper"] = fit_phase(model, train_ds, None, val_ds, epochs=config.epochs,
                                     learning_rate=config.learning_rate, config=config,
                                     weights=weights, callbacks=[checkpoint], phase="paper")
    else:
        # The head-only model starts after "pool", on pooled cached features.
        pooled_train, pooled_val = (
            keras.ops.convert_to_numpy(head_layers[0](top.predict(x, batch_size=64, verbose=0)))
            for x in (cut_train, cut_val)
        )
        pooled = keras.Input(shape=pooled_train.shape[1:])
        head = keras.Model(
            pooled, head_layers[3](head_layers[2](head_layers[1](pooled))), name="head"
        )
        history["paper"] = fit_phase(head, pooled_train, labels["train"],
                                     (pooled_val, labels["val"]), epochs=config.epochs,
                                     learning_rate=config.learning_rate, config=config,
                                     weights=weights, callbacks=[checkpoint], phase="paper")
    timings["paper_fit_s"] = time.perf_counter() - tick

    if config.recipe == "finetune":
        before = model.get_weights()
        unfreeze_top(model, config.finetune_from)
        tick = time.perf_counter()
        if augment_finetune:
            history["finetune"] = fit_phase(
                model, train_ds, None, val_ds, epochs=config.finetune_epochs,
                learning_rate=config.finetune_learning_rate, config=config, weights=weights,
                callbacks=[checkpoint], phase="finetune",
            )
        else:
            cut_input = keras.Input(shape=cut_train.shape[1:])
            x = top(cut_input)
            for layer in head_layers:
                x = layer(x)
            upper = keras.Model(cut_input, x, name="upper")
            history["finetune"] = fit_phase(
                upper, cut_train, labels["train"], (cut_val, labels["val"]),
                epochs=config.finetune_epochs, learning_rate=config.finetune_learning_rate,
                config=config, weights=weights, callbacks=[checkpoint], phase="finetune",
            )
        timings["finetune_fit_s"] = time.perf_counter() - tick
        _keep_better(model, before, history)

    model.save(out_dir / "model.keras")

    # Calibrate on validation, report on test: the test split is touched once, here.
    tick = time.perf_counter()
    logits_model = keras.Model(model.input, model.get_layer("logits").output)

    def logits_of(split: str) -> np.ndarray:
        ds = _image_dataset(images[split], labels[split], 32).map(lambda x, y: x)
        return np.asarray(logits_model.predict(ds, verbose=0), dtype=np.float64)

    val_logits, test_logits = logits_of("val"), logits_of("test")
    temperature = fit_temperature(val_logits, labels["val"])
    # The same report as `csss evaluate` on the test split (it writes metrics.json).
    metrics = evaluation.write_report(
        out_dir, labels["test"], softmax(test_logits, temperature), classes, config.threshold,
        uncalibrated=softmax(test_logits), title=f"{config.recipe} recipe on {data_dir.name} "
        "(test split, Keras model)", extra={"temperature": temperature},
    )
    timings["evaluate_s"] = time.perf_counter() - tick
    timings["total_s"] = time.perf_counter() - started

    training_summary = {
        "recipe": config.recipe,
        "config": {k: v for k, v in asdict(config).items() if k not in ("cache_dir", "verbose")},
        "backbone_weights_sha256": (
            hashlib.sha256(weights_path.read_bytes()).hexdigest() if weights_path else None
        ),
        "best_epochs": {phase: h["best_epoch"] for phase, h in history.items()},
        "finetune_kept": history.get("finetune", {}).get("kept"),
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
    }
    metadata = model_card.build_metadata(
        classes=classes,
        input_size=config.input_size,
        threshold=config.threshold,
        temperature=temperature,
        metrics=metrics,
        training_data={"dataset": data_dir.name, "split_manifest": "split.csv",
                       "split_seed": config.seed, "counts": summarize(splits)},
        training=training_summary,
    )
    if on_metadata is not None:
        metadata = on_metadata(metadata)
    (out_dir / "model.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (out_dir / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    _plot_curves(history, out_dir / "curves.png")
    return TrainingResult(out_dir / "model.keras", metadata,
                          {phase: h["epochs"] for phase, h in history.items()}, timings)


def _plot_curves(history: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [(phase, e) for phase, h in history.items() for e in h["epochs"]]
    x = np.arange(1, len(epochs) + 1)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        axis.plot(x, [e[metric] for _, e in epochs], label=f"train {metric}")
        axis.plot(x, [e[f"val_{metric}"] for _, e in epochs], label=f"val {metric}")
        boundary = sum(1 for phase, _ in epochs if phase == "paper")
        if boundary < len(epochs):
            axis.axvline(boundary + 0.5, color="grey", linestyle="--", label="fine-tune starts")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
