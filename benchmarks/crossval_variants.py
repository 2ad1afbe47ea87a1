"""5-fold CV of cheap recipe variants on cached frozen features (the model card's table).

    python benchmarks/crossval_variants.py --data ../shared/data/cxr/train --cache /tmp/cv \
    --backbone-weights ../shared/data/weights/mobilenet_v2_1.0_224_no_top_imagenet_coral_ptq.h5 \
    [VARIANT ...]

`csss crossval` cross-validates what `csss train` can do; this script tries what it cannot
yet (test-time flip, a per-class logit bias, focal loss, 288×288 input) without a full training
per variant. The backbone's pooled features of every image and of its mirror are computed once
per input size (about a minute each on 2 cores) and cached; each variant then trains the head
per round as the paper phase does (``ml.training.fit_phase``: Adam 1e-4, ≤ 15 epochs, balanced
class weights, EarlyStopping) on the folds of ``csss crossval`` (``ml.data.fold_splits``),
fits the temperature on the validation fold and scores the test fold with
``ml.evaluation.compute_metrics``. Prints one JSON line per variant (mean and sd over rounds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.calibration import fit_temperature, softmax  # noqa: E402
from ml.data import class_weights, discover, fold_splits, stratified_folds  # noqa: E402
from ml.evaluation import compute_metrics  # noqa: E402

VARIANTS = {
    "base224": {},
    "base224_tta": {"tta": True},
    "base224_bias": {"bias": True},
    "focal224": {"loss": "focal"},
    "flipaug224_tta": {"tta": True, "train_flip": True},
    "flipaug224_tta_bias": {"tta": True, "train_flip": True, "bias": True},
    "base224_e40_lr3e-4": {"epochs": 40, "learning_rate": 3e-4},
    "base288": {"size": 288},
    "base288_tta": {"size": 288, "tta": True},
}


def pooled_features(data_dir: Path, samples, weights: Path, size: int, cache: Path
                    ) -> dict[bool, np.ndarray]:
    """Pooled backbone features of every image and of its mirror, cached as .npy."""
    paths = {flip: cache / f"pooled_{size}_{int(flip)}.npy" for flip in (False, True)}
    if all(p.is_file() for p in paths.values()):
        return {flip: np.load(p) for flip, p in paths.items()}
    import keras

    from ml.model import build_classifier
    from ml.training import load_images

    images = load_images(data_dir, samples, (size, size), progress=False)
    model = build_classifier(4, weights=weights, input_size=(size, size))
    pooled = keras.Model(model.input, model.get_layer("pool").output)
    cache.mkdir(parents=True, exist_ok=True)
    for flip, path in paths.items():
        chunks = []
        for start in range(0, len(images), 256):  # float32 copies of 256 images at a time
            chunk = images[start : start + 256]
            chunk = (chunk[:, :, ::-1] if flip else chunk).astype(np.float32) / 255.0
            chunks.append(pooled.predict(chunk, batch_size=32, verbose=0))
        np.save(path, np.concatenate(chunks))
    return {flip: np.load(p) for flip, p in paths.items()}


def focal_loss(alpha: np.ndarray, gamma: float = 2.0):
    """Class-balanced focal loss (Lin et al. 2017) on probabilities, integer labels."""
    from keras import ops

    alpha_tensor = ops.convert_to_tensor(alpha.astype(np.float32))

    def loss(y_true, y_pred):
        onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), len(alpha))
        p = ops.sum(onehot * ops.clip(y_pred, 1e-7, 1.0), axis=-1)
        return -ops.sum(onehot * alpha_tensor, axis=-1) * (1 - p) ** gamma * ops.log(p)

    return loss


def head_logits(seed, x_train, y_train, x_val, y_val, inputs, classes, *, epochs,
                learning_rate, loss) -> list[np.ndarray]:
    """Train the paper's head on pooled features; return the logits of each of ``inputs``."""
    import keras

    from ml.training import TrainingConfig, fit_phase

    keras.utils.set_random_seed(seed)
    pooled = keras.Input((x_train.shape[1],))
    logits = keras.layers.Dense(len(classes))(keras.layers.Dense(128, activation="relu")(pooled))
    model = keras.Model(pooled, keras.layers.Activation("softmax")(logits))
    weights = class_weights((classes[i] for i in y_train), classes)
    config = TrainingConfig(verbose=0)
    if loss == "ce":
        fit_phase(model, x_train, y_train, (x_val, y_val), epochs=epochs,
                  learning_rate=learning_rate, config=config, weights=weights, callbacks=[],
                  phase="head")
    else:
        alpha = np.array([weights[i] for i in range(len(classes))])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss=focal_loss(alpha / alpha.mean()))
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                             restore_best_weights=True)
        model.fit(x_train, y_train, batch_size=config.batch_size, epochs=epochs,
                  validation_data=(x_val, y_val), callbacks=[stop], verbose=0)
    logits_model = keras.Model(pooled, logits)
    return [np.asarray(logits_model.predict(x, batch_size=256, verbose=0), np.float64)
            for x in inputs]


def fit_bias(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class additive logit bias maximising macro sensitivity (coordinate search)."""
    k = logits.shape[1]

    def macro_sensitivity(bias: np.ndarray) -> float:
        predicted = (logits + bias).argmax(axis=1)
        return float(np.mean([(predicted[labels == c] == c).mean() for c in range(k)]))

    bias = np.zeros(k)
    for _ in range(3):
        for c in range(k):
            best_score, best_value = macro_sensitivity(bias), bias[c]
            for value in np.linspace(-1.5, 1.5, 31):
                trial = bias.copy()
                trial[c] = value
                if macro_sensitivity(trial) > best_score + 1e-9:
                    best_score, best_value = macro_sensitivity(trial), value
            bias[c] = best_value
    return bias - bias.mean()


def run_variant(features, labels, rounds, classes, *, size=224, tta=False, train_flip=False,
                epochs=15, learning_rate=1e-4, loss="ce", bias=False) -> dict:
    original, mirrored = features[size][False], features[size][True]
    scores = []
    for number, split in enumerate(rounds):
        train, val, test = split["train"], split["val"], split["test"]
        x_train, y_train = original[train], labels[train]
        if train_flip:
            x_train = np.concatenate([x_train, mirrored[train]])
            y_train = np.concatenate([y_train, y_train])
        inputs = [original[val], original[test]] + ([mirrored[val], mirrored[test]] if tta else [])
        outputs = head_logits(42 + number, x_train, y_train, original[val], labels[val], inputs,
                              classes, epochs=epochs, learning_rate=learning_rate, loss=loss)
        val_logits, test_logits = outputs[0], outputs[1]
        if tta:
            val_logits, test_logits = (val_logits + outputs[2]) / 2, (test_logits + outputs[3]) / 2
        if bias:
            shift = fit_bias(val_logits, labels[val])
            val_logits, test_logits = val_logits + shift, test_logits + shift
        temperature = fit_temperature(val_logits, labels[val])
        metrics = compute_metrics(labels[test], softmax(test_logits, temperature), classes, 0.75)
        scores.append({
            "accuracy": metrics["accuracy"], "macro_sensitivity": metrics["macro_sensitivity"],
            "viral_sensitivity": metrics["per_class"]["Viral_Pneumonia"]["sensitivity"],
            "covid_sensitivity": metrics["per_class"]["COVID"]["sensitivity"],
            "ece": metrics["ece"], "accuracy_on_accepted": metrics["accuracy_on_accepted"],
            "coverage": 1 - metrics["uncertain_rate"], "temperature": temperature,
        })
    return {key: [float(np.mean([s[key] for s in scores])),
                  float(np.std([s[key] for s in scores], ddof=1))] for key in scores[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--backbone-weights", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True, help="feature cache folder")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("variants", nargs="*", help=f"default: all of {', '.join(VARIANTS)}")
    args = parser.parse_args()
    unknown = sorted(set(args.variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    args.variants = args.variants or list(VARIANTS)

    classes, samples = discover(args.data)
    position = {s.path: i for i, s in enumerate(samples)}
    labels = np.array([classes.index(s.label) for s in samples])
    folds = stratified_folds(samples, args.folds, args.seed)
    rounds = [{name: np.array([position[s.path] for s in members])
               for name, members in fold_splits(folds, i).items()} for i in range(args.folds)]
    sizes = sorted({VARIANTS[name].get("size", 224) for name in args.variants})
    features = {size: pooled_features(args.data, samples, args.backbone_weights, size,
                                      args.cache) for size in sizes}
    for name in args.variants:
        started = time.perf_counter()
        summary = run_variant(features, labels, rounds, classes, **VARIANTS[name])
        print(json.dumps({"variant": name, "seconds": round(time.perf_counter() - started, 1),
                          **summary}), flush=True)


if __name__ == "__main__":
    main()
