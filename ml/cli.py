"""Command line: ``csss train | crossval | evaluate | export | calibrate-assessability | predict``.

Plain click commands (``COMMANDS``), added to the ``csss`` group without building the web app.
TensorFlow is imported inside the commands that need it. Run standalone with
``python -m ml.cli COMMAND ...``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import numpy as np

log = logging.getLogger(__name__)

_existing_dir = click.Path(exists=True, file_okay=False, path_type=Path)
_existing_path = click.Path(exists=True, path_type=Path)


def _training_options(command: Callable) -> Callable:
    """The recipe options that `csss train` and `csss crossval` share."""
    options = [
        click.option("--data", "data_dir", type=_existing_dir, required=True,
                     help="Folder-per-class image directory."),
        click.option("--backbone-weights", required=True,
                     type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="MobileNetV2 no-top ImageNet weights (.h5)."),
        click.option("--recipe", type=click.Choice(["paper", "finetune"]), default="finetune",
                     show_default=True),
        click.option("--augment", type=click.Choice(["all", "finetune", "none"]),
                     default="all", show_default=True,
                     help="Phases with the paper's augmentation; the others cache frozen "
                          "features (fast path)."),
        click.option("--epochs", type=int, default=15, show_default=True),
        click.option("--finetune-epochs", type=int, default=15, show_default=True),
        click.option("--finetune-from", default="block_14_expand", show_default=True,
                     help="First backbone layer the finetune recipe unfreezes."),
        click.option("--finetune-learning-rate", type=float, default=1e-5, show_default=True),
        click.option("--cache-dir", type=click.Path(path_type=Path), default=None,
                     help="Where to cache frozen features (default: OUT/cache)."),
        click.option("--seed", type=int, default=42, show_default=True),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _training_config(out_dir: Path, recipe: str, augment: str, epochs: int,
                     finetune_epochs: int, finetune_from: str, finetune_learning_rate: float,
                     cache_dir: Path | None, seed: int):
    from ml.training import TrainingConfig

    return TrainingConfig(
        recipe=recipe, augment=augment, epochs=epochs, finetune_epochs=finetune_epochs,
        finetune_from=finetune_from, finetune_learning_rate=finetune_learning_rate, seed=seed,
        cache_dir=str(cache_dir or Path(out_dir) / "cache"),
    )


@click.command()
@_training_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Where to write the model, split manifest, metrics and curves.")
def train(data_dir: Path, out_dir: Path, backbone_weights: Path, **options) -> None:
    """Train the classifier on a folder-per-class dataset."""
    from ml.training import train as run_training

    try:
        result = run_training(data_dir, out_dir, backbone_weights=backbone_weights,
                              config=_training_config(out_dir, **options))
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    metrics = result.metadata["metrics"]
    click.echo(json.dumps({"timings_s": result.metadata["training"]["timings_s"],
                           "test_accuracy": metrics["accuracy"], "test_ece": metrics["ece"],
                           "temperature": result.metadata["temperature"]}, indent=2))
    click.echo(str(result.model_path))


@click.command()
@_training_options
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Where to write crossval.json, crossval.md and one folder per round.")
@click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True)
def crossval(data_dir: Path, out_dir: Path, backbone_weights: Path, folds: int,
             **options) -> None:
    """Cross-validate a `csss train` recipe over stratified folds; report mean ± sd.

    Round i trains on the other folds (one of them for validation) and evaluates on fold i,
    exactly as `csss train` does with its single split. The folds are dealt with --seed.
    Each round is a full training run: with --augment none it takes minutes on a CPU, with
    augmentation about as long as `csss train` (12 min or more), times the folds.
    """
    from functools import partial

    from ml.crossval import crossval as run_crossval
    from ml.training import train as run_training

    config = _training_config(out_dir, **options)
    try:
        result = run_crossval(
            data_dir, out_dir, folds=folds, seed=config.seed,
            train=partial(run_training, backbone_weights=backbone_weights, config=config),
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    for key in ("accuracy", "macro_sensitivity", "ece", "accuracy_on_accepted"):
        entry = result.summary[key]
        click.echo(f"{key} {entry['mean']:.4f} ± {entry['sd']:.4f}")
    click.echo(str(Path(out_dir) / "crossval.json"))


@click.command()
@click.option("--data", "data_dir", type=_existing_dir, required=True,
              help="Folder-per-class image directory.")
@click.option("--model", "model_path", type=_existing_path, default=None,
              help="Model file or directory (default: MODEL_PATH, else the demo model).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Split manifest; evaluate only the --split rows of it.")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test",
              show_default=True)
@click.option("--record", is_flag=True,
              help="Also store the metrics in the model's metadata JSON (its own test split).")
def evaluate(data_dir: Path, model_path: Path | None, out_dir: Path, manifest: Path | None,
             split: str, record: bool) -> None:
    """Evaluate a model on a folder-per-class directory (or one split of a manifest)."""
    from tqdm import tqdm

    from ml.calibration import softmax
    from ml.data import discover, read_manifest
    from ml.evaluation import write_report
    from ml.export import metadata_path
    from ml.infer import Classifier

    classifier = Classifier.load(model_path)
    if manifest is not None:
        samples = read_manifest(manifest)[split]
    else:
        samples = discover(data_dir)[1]
    unknown = sorted({s.label for s in samples} - set(classifier.classes))
    if unknown:
        raise click.ClickException(
            f"classes {', '.join(unknown)} are in the data but not in the model, which knows "
            f"{', '.join(classifier.classes)}; remove those folders or use a model trained on them"
        )
    index = {name: i for i, name in enumerate(classifier.classes)}
    y_true = np.array([index[s.label] for s in samples])
    started = time.perf_counter()
    logits = np.stack([classifier.logits((data_dir / s.path).read_bytes())
                       for s in tqdm(samples, desc="evaluate", unit="img")])
    seconds = time.perf_counter() - started
    metrics = write_report(
        out_dir, y_true, classifier.probabilities(logits), classifier.classes,
        classifier.threshold, uncalibrated=softmax(logits),
        title=f"{classifier.metadata['name']} {classifier.metadata['version']} on "
              f"{data_dir.name}" + (f" ({split} split)" if manifest else ""),
        extra={"temperature": classifier.temperature, "model_sha256": classifier.metadata[
            "sha256"], "seconds_per_image": seconds / max(len(samples), 1)},
    )
    if record:
        target = metadata_path(classifier.path)
        stored = json.loads(target.read_text())
        stored["metrics"] = {k: v for k, v in metrics.items() if k != "seconds_per_image"}
        target.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n")
    click.echo(f"accuracy {metrics['accuracy']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
               f"ECE {metrics['ece']:.4f}  uncertain {metrics['uncertain_rate']:.3f}")
    click.echo(str(Path(out_dir) / "metrics.json"))


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), required=True, help="A .keras model written by `csss train`.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--fp16/--fp32", default=True, show_default=True,
              help="Store weights as float16 (half the size) or float32.")
@click.option("--int8", is_flag=True,
              help="Post-training int8 quantisation (weights and activations), calibrated "
                   "on training images from --calibration-data; overrides --fp16/--fp32.")
@click.option("--calibration-data", type=_existing_dir, default=None,
              help="Folder-per-class images for --int8; with the split.csv beside the model "
                   "only its train split is used.")
@click.option("--calibration-images", type=int, default=200, show_default=True,
              help="How many images (drawn evenly from the classes, seeded) calibrate --int8.")
@click.option("--extra-metadata", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="JSON merged into the metadata (sources, licenses, version).")
def export(model_path: Path, out_dir: Path, fp16: bool, int8: bool,
           calibration_data: Path | None, calibration_images: int,
           extra_metadata: Path | None) -> None:
    """Export a trained model to LiteRT (.tflite) with its metadata JSON."""
    from ml.export import export as run_export

    extra = json.loads(extra_metadata.read_text()) if extra_metadata else None
    calibration = None
    if int8:
        if calibration_data is None:
            raise click.ClickException(
                "--int8 needs --calibration-data DIR (the training images' folder)")
        calibration = _calibration_images(model_path, calibration_data, calibration_images)
    try:
        target = run_export(model_path, out_dir, fp16=fp16, int8_calibration=calibration,
                            extra_metadata=extra)
    except FileNotFoundError as err:
        raise click.ClickException(str(err)) from err
    click.echo(str(target))


def _calibration_images(model_path: Path, data_dir: Path, count: int) -> list[np.ndarray]:
    """Up to ``count`` preprocessed training images, stratified by class, seed 0."""
    from ml.data import discover, read_manifest
    from ml.export import metadata_path
    from ml.preprocessing import preprocess

    manifest = model_path.parent / "split.csv"
    samples = read_manifest(manifest)["train"] if manifest.is_file() else discover(data_dir)[1]
    if not samples:
        raise click.ClickException(f"no training images found in {data_dir}")
    size = json.loads(metadata_path(model_path).read_text())["input_size"]
    order = np.random.default_rng(0).permutation(len(samples))
    by_class: dict[str, list] = {}
    for index in order:
        by_class.setdefault(samples[index].label, []).append(samples[index])
    # Round-robin over the classes, so that a small count still sees every class.
    chosen = [group[i] for i in range(max(map(len, by_class.values())))
              for group in by_class.values() if i < len(group)]
    return [preprocess((data_dir / s.path).read_bytes(), size) for s in chosen[:count]]


@click.command("calibrate-assessability")
@click.option("--data", "data_dir", type=_existing_dir, required=True,
              help="Folder-per-class image directory the model was trained on.")
@click.option("--model", "model_path", type=_existing_path, default=None,
              help="Model file or directory (default: MODEL_PATH, else the demo model).")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="Split manifest (default: split.csv beside the model).")
@click.option("--min-side", type=int, default=None,
              help="Shorter side, in pixels, below which an image is too small "
                   "(default: ml.assessability.DEFAULT_MIN_SIDE).")
def calibrate_assessability(data_dir: Path, model_path: Path | None, manifest: Path | None,
                            min_side: int | None) -> None:
    """Fit the "Not assessable" limits (image statistics, OOD threshold) and store them.

    Means and covariance come from the training split, the OOD threshold from the validation
    split. Writes <model>.assessability.npz and the `assessability` key of the metadata.
    """
    from tqdm import tqdm

    from ml import assessability
    from ml.data import read_manifest
    from ml.export import metadata_path
    from ml.infer import Classifier

    classifier = Classifier.load(model_path)
    manifest = manifest or classifier.path.parent / "split.csv"
    if not manifest.is_file():
        raise click.ClickException(f"split manifest {manifest} not found; pass --manifest")
    splits = read_manifest(manifest)
    index = {name: i for i, name in enumerate(classifier.classes)}

    def observed(split: str) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
        for sample in tqdm(splits[split], desc=split, unit="img"):
            rgb, features = classifier.model_input_and_features(
                (data_dir / sample.path).read_bytes())
            yield rgb, features, index[sample.label]

    fitted = assessability.fit(
        observed("train"), ((rgb, maps) for rgb, maps, _ in observed("val")),
        min_side=min_side or assessability.DEFAULT_MIN_SIDE,
    )
    entry = fitted.limits.save(classifier.path)
    entry["ood_score"] = ("class-conditional Mahalanobis distance (squared) of the pooled "
                          "backbone features; shared covariance, Ledoit-Wolf shrinkage "
                          f"{fitted.shrinkage:.4f}; fitted on the train split")
    entry["ood_validation_pass_rate"] = fitted.validation_pass_rate
    entry["ood_validation_distance_quantiles"] = fitted.validation_distance_quantiles
    entry["statistics_validation_pass_rate"] = fitted.validation_statistics_pass_rate
    target = metadata_path(classifier.path)
    stored = json.loads(target.read_text())
    stored["assessability"] = entry
    target.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n")
    click.echo(json.dumps(entry, indent=2))
    click.echo(str(target))


@click.command()
@click.argument("image_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--model", "model_path", type=_existing_path, default=None)
@click.option("--threshold", type=float, default=None, help="τ (default: the model's).")
@click.option("--gradcam", "gradcam_png", type=click.Path(path_type=Path), default=None,
              help="Also write the Grad-CAM overlay PNG here.")
def predict(image_file: Path, model_path: Path | None, threshold: float | None,
            gradcam_png: Path | None) -> None:
    """Classify one image and print the result as JSON."""
    from ml.gradcam import overlay_png
    from ml.infer import Classifier, ImageDecodeError

    classifier = Classifier.load(model_path)
    data = image_file.read_bytes()
    try:
        prediction, heatmap = classifier.explain(data, threshold)
    except ImageDecodeError as err:
        raise click.ClickException(str(err)) from err
    if gradcam_png is not None:
        gradcam_png.write_bytes(overlay_png(data, heatmap))
    click.echo(json.dumps({
        "label": prediction.label, "confidence": prediction.confidence,
        "top_class": prediction.top_class, "uncertain": prediction.uncertain,
        "threshold": prediction.threshold, "probabilities": prediction.probabilities,
        "assessable": prediction.assessable, "reason": prediction.reason,
    }, indent=2))


COMMANDS = [train, crossval, evaluate, export, calibrate_assessability, predict]

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    click.Group("csss", commands=COMMANDS)()
