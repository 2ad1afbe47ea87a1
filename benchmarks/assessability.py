"""How well the classifier refuses what it cannot judge ("Not assessable"), per kind of image.

    python benchmarks/assessability.py [--model PATH] [--data DIR] [--manifest CSV]
                                       [--transformed N]

Builds a set of images that are not chest radiographs from what is reachable offline and
counts how many ``Classifier.predict`` flags as not assessable, per kind and overall (target
≥ 95 %), and how many of the test split's real radiographs it flags (false alarms, target
≤ 2 %). The kinds:

- solid colours, noise, gradients and rendered text pages (Pillow ``ImageDraw``), generated;
- natural photographs shipped in scikit-image's ``data`` module (no download);
- CT and MR slices from pydicom's test files (``pydicom-data``), every frame, duplicates of one
  image in another transfer syntax removed;
- test-split radiographs rotated by 90°, inverted, or heavily cropped (a random 20 % patch),
  which need ``../shared/data`` (skipped without it, like the false-alarm count).

Prints one line per kind with the reasons given, then the totals.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.data import read_manifest  # noqa: E402
from ml.infer import Classifier  # noqa: E402

SHARED_DATA = ROOT.parent / "shared" / "data" / "cxr" / "train"
SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cat", "cell", "chelsea", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry",
    "logo", "microaneurysms", "moon", "page", "retina", "rocket", "text",
)
WORDS = ("patient", "report", "discharge", "summary", "the", "of", "and", "chest", "lung",
         "clinic", "history", "medication", "dose", "daily", "result", "normal", "see", "note")


def solid_colours(rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    fixed = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0), (0, 255, 0),
             (0, 0, 255), (40, 40, 40), (220, 220, 220)]
    for index in range(count):
        colour = fixed[index] if index < len(fixed) else tuple(rng.integers(0, 256, 3))
        yield np.full((768, 1024, 3), colour, dtype=np.uint8)


def noise(rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    for index in range(count):
        kind = index % 4
        if kind == 0:
            yield rng.integers(0, 256, (1024, 1024), dtype=np.uint8)
        elif kind == 1:
            yield np.clip(rng.normal(128, 40, (1024, 1024)), 0, 255).astype(np.uint8)
        elif kind == 2:
            yield rng.integers(0, 256, (800, 1000, 3), dtype=np.uint8)
        else:  # smooth (blurred) noise: blobs, closer to an image's spectrum
            blurred = cv2.GaussianBlur(rng.normal(0, 1, (1024, 1024)).astype(np.float32),
                                       (0, 0), float(rng.uniform(4, 30)))
            scaled = (blurred - blurred.min()) / (np.ptp(blurred) + 1e-6) * 255
            yield scaled.astype(np.uint8)


def gradients(rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    y, x = np.mgrid[0:1024, 0:1024].astype(np.float32) / 1023
    for index in range(count):
        kind = index % 4
        angle = rng.uniform(0, np.pi)
        if kind == 0:
            field = x
        elif kind == 1:
            field = (np.cos(angle) * x + np.sin(angle) * y) / (abs(np.cos(angle)) +
                                                                 abs(np.sin(angle)))
        elif kind == 2:
            field = np.clip(np.hypot(x - rng.uniform(), y - rng.uniform()) / 1.2, 0, 1)
        else:
            field = y
        gray = (field * 255).astype(np.uint8)
        if index % 2:  # a colour gradient between two random colours
            start, stop = rng.integers(0, 256, (2, 3))
            yield (start + field[..., None] * (stop - start)).astype(np.uint8)
        else:
            yield gray


def text_pages(rng: np.random.Generator, count: int) -> Iterator[np.ndarray]:
    for index in range(count):
        width, height = (850, 1100) if index % 3 else (1100, 850)
        dark = index % 5 == 4  # a few white-on-black pages (terminal screenshots)
        page = Image.new("L", (width, height), 0 if dark else 255)
        draw = ImageDraw.Draw(page)
        size = int(rng.integers(12, 40))
        font = ImageFont.load_default(size=size)
        top = int(rng.integers(20, 80))
        while top < height - size:
            line = " ".join(rng.choice(WORDS, int(rng.integers(3, 12))))
            draw.text((40, top), line, fill=255 if dark else 0, font=font)
            top += int(size * 1.5)
        yield np.asarray(page)


def photographs() -> Iterator[np.ndarray]:
    import skimage.data

    for name in SKIMAGE_PHOTOS:
        image = np.asarray(getattr(skimage.data, name)())
        if image.dtype == bool:
            image = image.astype(np.uint8) * 255
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        yield image.astype(np.uint8) if image.dtype != np.uint16 else image


def ct_and_mr_slices() -> Iterator[np.ndarray]:
    import pydicom
    from pydicom.data import get_testdata_files

    seen: set[str] = set()
    for path in sorted(get_testdata_files("*.dcm")):
        try:
            dataset = pydicom.dcmread(path)
            if dataset.get("Modality") not in ("CT", "MR"):
                continue
            pixels = dataset.pixel_array
        except Exception:
            continue
        frames = pixels if pixels.ndim == 3 and pixels.shape[-1] != 3 else pixels[None]
        for frame in frames:
            # Native byte order and one dtype, so big-endian copies hash like the others.
            digest = hashlib.sha256(frame.astype(np.int32).tobytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            if frame.dtype not in (np.uint8, np.uint16, np.int16):
                frame = frame.astype(np.int16)
            yield frame


def transformed_radiographs(
    radiographs: list[np.ndarray], rng: np.random.Generator
) -> dict[str, list[np.ndarray]]:
    rotated = [np.ascontiguousarray(np.rot90(image)) for image in radiographs]
    inverted = [255 - image for image in radiographs]
    cropped = []
    for image in radiographs:
        height, width = image.shape[:2]
        side = max(8, int(0.2 * min(height, width)))
        top, left = rng.integers(0, height - side), rng.integers(0, width - side)
        patch = image[top:top + side, left:left + side]
        cropped.append(cv2.resize(patch, (256, 256), interpolation=cv2.INTER_LINEAR))
    return {"radiograph rotated 90°": rotated, "radiograph inverted": inverted,
            "radiograph cropped to 20 %": cropped}


def flagged(classifier: Classifier, images: list[np.ndarray]) -> Counter:
    return Counter(prediction.reason for prediction in classifier.predict_batch(images))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--data", type=Path, default=SHARED_DATA)
    parser.add_argument("--manifest", type=Path,
                        default=ROOT / "ml" / "demo_model" / "split.csv")
    parser.add_argument("--per-kind", type=int, default=40,
                        help="generated images per generated kind")
    parser.add_argument("--transformed", type=int, default=160,
                        help="test radiographs per transformation")
    args = parser.parse_args()
    classifier = Classifier.load(args.model)
    rng = np.random.default_rng(0)

    kinds: dict[str, list[np.ndarray]] = {
        "solid colour": list(solid_colours(rng, args.per_kind)),
        "noise": list(noise(rng, args.per_kind)),
        "gradient": list(gradients(rng, args.per_kind)),
        "text page": list(text_pages(rng, args.per_kind)),
        "photograph (skimage)": list(photographs()),
        "CT / MR slice (pydicom)": list(ct_and_mr_slices()),
    }
    radiographs: list[np.ndarray] = []
    if args.data.is_dir():
        test = read_manifest(args.manifest)["test"]
        radiographs = [cv2.imread(str(args.data / sample.path), cv2.IMREAD_GRAYSCALE)
                       for sample in test]
        chosen = rng.choice(len(radiographs), min(args.transformed, len(radiographs)),
                            replace=False)
        kinds.update(transformed_radiographs([radiographs[i] for i in chosen], rng))
    else:
        print(f"{args.data} not found: no transformed radiographs, no false-alarm count")

    print(f"model {classifier.path}")
    print(f"{'kind':28} {'n':>5} {'flagged':>8}  reasons")
    total = caught = 0
    for kind, images in kinds.items():
        reasons = flagged(classifier, images)
        hits = len(images) - reasons[None]
        total += len(images)
        caught += hits
        shown = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common() if reason)
        print(f"{kind:28} {len(images):5d} {hits / len(images):8.1%}  {shown}")
    print(f"{'all non-radiographs':28} {total:5d} {caught / total:8.1%}  (target >= 95 %)")
    if radiographs:
        reasons = flagged(classifier, radiographs)
        alarms = len(radiographs) - reasons[None]
        shown = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common() if reason)
        print(f"{'test radiographs (false alarms)':28} {len(radiographs):5d} "
              f"{alarms / len(radiographs):8.1%}  {shown}  (target <= 2 %)")


if __name__ == "__main__":
    main()
