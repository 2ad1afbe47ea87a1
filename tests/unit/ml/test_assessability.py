"""ml.assessability and the "Not assessable" verdict of the demo model (no shared data)."""

from __future__ import annotations

import io
import json
import shutil

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from ml import assessability
from ml.assessability import (
    NOT_RADIOGRAPH,
    OUT_OF_DISTRIBUTION,
    TOO_SMALL,
    UNDECODABLE,
    Limits,
    image_statistics,
    layout_score,
)
from ml.infer import DEMO_MODEL, NOT_ASSESSABLE, Classifier, ImageDecodeError, ModelLoadError

from .conftest import RADIOGRAPHS


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def radiographs() -> list[tuple[str, bytes]]:
    return [(path.name.split("__")[0], path.read_bytes())
            for path in sorted(RADIOGRAPHS.glob("*.jpg"))]


def test_real_radiographs_are_assessable_and_classified(demo):
    for label, data in radiographs():
        prediction = demo.predict(data)
        assert prediction.assessable and prediction.reason is None, label
        assert prediction.label == label


def test_an_8x8_solid_red_png_is_not_assessable(demo):
    prediction = demo.predict(png(np.full((8, 8, 3), (255, 0, 0), np.uint8)))
    assert not prediction.assessable
    assert prediction.reason in (TOO_SMALL, NOT_RADIOGRAPH)
    assert prediction.label == NOT_ASSESSABLE and prediction.label not in demo.classes
    assert prediction.uncertain
    # The model's probabilities stay visible, for transparency.
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)


def test_a_solid_grey_image_is_not_a_radiograph(demo):
    prediction = demo.predict(np.full((1024, 1024), 128, np.uint8))
    assert prediction.reason == NOT_RADIOGRAPH and prediction.label == NOT_ASSESSABLE


def test_a_colour_photograph_is_refused(demo):
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (test extra)")
    prediction = demo.predict(skimage_data.astronaut())
    assert prediction.reason in (NOT_RADIOGRAPH, OUT_OF_DISTRIBUTION)


def test_small_real_radiographs_are_too_small(demo):
    gray = cv2.imdecode(np.frombuffer(radiographs()[0][1], np.uint8), cv2.IMREAD_GRAYSCALE)
    limit = demo.metadata["assessability"]["min_side"]
    assert demo.predict(cv2.resize(gray, (limit - 1, 200))).reason == TOO_SMALL
    assert demo.predict(cv2.resize(gray, (limit, limit))).reason != TOO_SMALL


def test_turned_and_inverted_radiographs_are_refused(demo):
    for _, data in radiographs():
        gray = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
        for changed in (np.rot90(gray), np.rot90(gray, -1), 255 - gray):
            prediction = demo.predict(np.ascontiguousarray(changed))
            assert prediction.reason in (NOT_RADIOGRAPH, OUT_OF_DISTRIBUTION)


def test_a_crop_of_a_radiograph_is_out_of_distribution(demo):
    gray = cv2.imdecode(np.frombuffer(radiographs()[0][1], np.uint8), cv2.IMREAD_GRAYSCALE)
    patch = cv2.resize(gray[100:150, 40:90], (256, 256), interpolation=cv2.INTER_LINEAR)
    assert demo.predict(patch).reason in (NOT_RADIOGRAPH, OUT_OF_DISTRIBUTION)


def test_undecodable_bytes_raise_or_are_refused_on_request(demo):
    with pytest.raises(ImageDecodeError):
        demo.predict(b"GIF89a but not really")
    prediction = demo.predict(b"GIF89a but not really", undecodable="refuse")
    assert prediction.reason == UNDECODABLE and prediction.label == NOT_ASSESSABLE
    assert prediction.probabilities == {} and prediction.uncertain
    good = radiographs()[0][1]
    refused, answered = demo.predict_batch([b"", good], undecodable="refuse")
    assert refused.reason == UNDECODABLE and answered.assessable
    with pytest.raises(ImageDecodeError):
        demo.predict_batch([good, b""])


def test_explain_also_refuses(demo):
    prediction, heatmap = demo.explain(np.full((512, 512), 90, np.uint8))
    assert prediction.label == NOT_ASSESSABLE and heatmap.shape == (224, 224)


def test_demo_metadata_names_its_statistics_file(demo):
    entry = demo.metadata["assessability"]
    assert (DEMO_MODEL.parent / entry["statistics_file"]).is_file()
    assert entry["ood_validation_pass_rate"] >= 0.99
    assert entry["min_side"] == assessability.DEFAULT_MIN_SIDE


def test_a_model_without_limits_judges_everything(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(DEMO_MODEL.parent, copy)
    metadata = json.loads((copy / "model.json").read_text())
    del metadata["assessability"]
    (copy / "model.json").write_text(json.dumps(metadata))
    prediction = Classifier.load(copy).predict(np.full((8, 8), 0, np.uint8))
    assert prediction.assessable and prediction.label != NOT_ASSESSABLE


def test_altered_statistics_are_refused_at_load(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(DEMO_MODEL.parent, copy)
    with open(copy / "model.assessability.npz", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelLoadError, match="sha256"):
        Classifier.load(copy)
    (copy / "model.assessability.npz").unlink()
    with pytest.raises(ModelLoadError, match="not found"):
        Classifier.load(copy)


def test_layout_score_prefers_an_upright_chest():
    gray = cv2.imdecode(np.frombuffer(radiographs()[0][1], np.uint8), cv2.IMREAD_GRAYSCALE)
    upright = layout_score(gray.astype(np.float32))
    assert upright > layout_score(np.rot90(gray).astype(np.float32))
    assert upright > layout_score((255 - gray).astype(np.float32))


def test_image_statistics_see_colour_flatness_and_noise():
    gray = np.full((224, 224, 3), 100, np.uint8)
    assert image_statistics(gray)["contrast"] == pytest.approx(0, abs=1e-3)
    red = np.zeros((224, 224, 3), np.uint8)
    red[..., 0] = 255
    assert image_statistics(red)["colour"] == pytest.approx(255)
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    assert image_statistics(noise)["roughness"] > 2


def _observations(rng: np.random.Generator, count: int, centre: float):
    """Fake (model input, 7×7×C feature maps, class) triples around two class centres."""
    for i in range(count):
        label = i % 2
        maps = rng.normal(centre + 3 * label, 1.0, (7, 7, 16)).astype(np.float32)
        rgb = np.repeat(cv2.resize(np.linspace(0, 255, 224, dtype=np.uint8)[None], (224, 224))
                        [..., None], 3, axis=2)
        yield rgb, maps, label


def test_fit_sets_the_threshold_on_validation_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    fitted = assessability.fit(
        _observations(rng, 200, 0.0),
        ((rgb, maps) for rgb, maps, _ in _observations(rng, 200, 0.0)),
        min_side=64,
    )
    limits = fitted.limits
    assert fitted.validation_pass_rate >= 0.99
    assert 0 <= fitted.shrinkage <= 1
    near = rng.normal(0.0, 1.0, (7, 7, 16)).astype(np.float32)
    far = near + 10.0
    assert limits.distance(near) <= limits.ood_threshold < limits.distance(far)
    model = tmp_path / "model.tflite"
    entry = limits.save(model)
    loaded = Limits.from_metadata(entry, model)
    np.testing.assert_array_equal(loaded.whitening, limits.whitening)
    assert loaded.distance(far) == pytest.approx(limits.distance(far))
    assert loaded.min_side == 64


def test_fit_refuses_a_class_with_one_image():
    rng = np.random.default_rng(0)
    train = list(_observations(rng, 3, 0.0))  # classes 0, 1, 0: class 1 has one image
    with pytest.raises(ValueError, match="at least 2"):
        assessability.fit(train, [(rgb, maps) for rgb, maps, _ in train])


def test_calibrate_command_writes_limits_the_classifier_uses(tmp_path):
    from ml.cli import calibrate_assessability

    model_dir = tmp_path / "model"
    shutil.copytree(DEMO_MODEL.parent, model_dir)
    data = tmp_path / "data"
    rows = ["split,label,path"]
    for label, jpeg in radiographs():
        gray = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
        (data / label).mkdir(parents=True)
        for i, split in enumerate(("train", "train", "train", "val")):
            name = f"{label}/{i}.png"
            shifted = np.roll(gray, 4 * i, axis=1)
            cv2.imwrite(str(data / name), shifted)
            rows.append(f"{split},{label},{name}")
    # The demo model knows four classes; the fourth gets copies of the Normal image.
    (data / "COVID").mkdir()
    for i, split in enumerate(("train", "train", "val")):
        shutil.copy(data / "Normal" / f"{i}.png", data / "COVID" / f"{i}.png")
        rows.append(f"{split},COVID,COVID/{i}.png")
    manifest = tmp_path / "split.csv"
    manifest.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(calibrate_assessability, [
        "--data", str(data), "--model", str(model_dir), "--manifest", str(manifest),
        "--min-side", "200"])
    assert result.exit_code == 0, result.output
    metadata = json.loads((model_dir / "model.json").read_text())
    assert metadata["assessability"]["min_side"] == 200
    assert metadata["assessability"]["ood_validation_pass_rate"] == 1.0
    Classifier._instances.pop((model_dir / "model.tflite").resolve(), None)
    classifier = Classifier.load(model_dir)
    assert classifier.predict(np.full((199, 300), 80, np.uint8)).reason == TOO_SMALL
