"""Inference latency of the served classifier (LiteRT), p50/p95 in milliseconds.

    python benchmarks/inference.py [--model PATH] [--repeats 200] [--threads 1 2 4]

Measures: the model alone at batch 1 (for each LiteRT thread count asked for), decode →
result (``Classifier.predict``) for a 1024×1024 PNG, a 2500×2000 JPEG and a 2048×2048 16-bit
array (DICOM-sized), and throughput over 64 images (sequential ``predict_batch`` and 2 threads
sharing one classifier), and the "Not assessable" checks alone. Test images are a real chest
X-ray from ``../shared/data`` scaled up when it is there, else smooth synthetic noise:
compressed sizes, hence decode times, are realistic either way. The seed paper reports 0.73 s
per scan.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.infer import Classifier  # noqa: E402
from ml.preprocessing import preprocess  # noqa: E402
from ml.runtime import LiteRTRunner  # noqa: E402

SHARED_XRAY_DIR = ROOT.parent / "shared" / "data" / "cxr" / "train" / "Normal"


def base_image() -> np.ndarray:
    """A grayscale chest X-ray (shared data) or, failing that, smooth synthetic noise."""
    if SHARED_XRAY_DIR.is_dir():
        first = sorted(SHARED_XRAY_DIR.iterdir())[0]
        return cv2.imread(str(first), cv2.IMREAD_GRAYSCALE)
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 60, (256, 256)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 3), 0, 255).astype(np.uint8)


def upscale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize up and add a little sensor noise, so that files compress like real scans."""
    large = cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    large += np.random.default_rng(1).normal(0, 2.0, large.shape).astype(np.float32)
    return np.clip(large, 0, 255).astype(np.uint8)


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms"


def time_calls(function, repeats: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: MODEL_PATH, else the demo model")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    classifier = Classifier.load(args.model)
    size = classifier.input_size
    print(f"model {classifier.path} ({classifier.path.stat().st_size / 1e6:.1f} MB), "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")

    xray = base_image()
    png_1024 = cv2.imencode(".png", upscale(xray, 1024, 1024))[1].tobytes()
    jpeg_2500 = cv2.imencode(".jpg", upscale(xray, 2500, 2000),
                             [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
    array_16 = upscale(xray, 2048, 2048).astype(np.uint16) * 16 + 7  # 12-bit range
    batch = preprocess(png_1024, size)[None]

    if classifier.path.suffix == ".tflite":
        for threads in args.threads:
            runner = LiteRTRunner(classifier.path, num_threads=threads)
            samples = time_calls(lambda r=runner: r.run(batch), args.repeats)
            print(f"model only, batch 1, {threads} thread(s):       {percentiles(samples)}")

    cases = {
        f"decode → result, 1024² PNG ({len(png_1024) / 1e6:.1f} MB):": png_1024,
        f"decode → result, 2500×2000 JPEG ({len(jpeg_2500) / 1e6:.1f} MB):": jpeg_2500,
        "decode → result, 2048² uint16 array:     ": array_16,
    }
    for label, image in cases.items():
        samples = time_calls(lambda i=image: classifier.predict(i), max(20, args.repeats // 4))
        print(f"{label:44s} {percentiles(samples)}")
    if classifier.limits is not None:
        rgb, features = classifier.model_input_and_features(png_1024)
        samples = time_calls(lambda: classifier.limits.judge((1024, 1024), rgb, features),
                             args.repeats)
        verdict = classifier.predict(png_1024)
        print(f"{'of which assessability checks:':44s} {percentiles(samples)}   "
              f"(1024² PNG assessable: {verdict.assessable})")
    samples = time_calls(lambda: classifier.explain(png_1024), max(20, args.repeats // 4))
    print(f"{'predict + Grad-CAM heatmap, 1024² PNG:':44s} {percentiles(samples)}")

    scans = [cv2.imencode(".jpg", np.roll(xray, i, axis=1))[1].tobytes() for i in range(64)]
    start = time.perf_counter()
    classifier.predict_batch(scans)
    sequential = len(scans) / (time.perf_counter() - start)
    with ThreadPoolExecutor(2) as pool:
        start = time.perf_counter()
        list(pool.map(classifier.predict, scans))
        threaded = len(scans) / (time.perf_counter() - start)
    print(f"throughput, 64 × 256² JPEG: predict_batch {sequential:6.1f} img/s, "
          f"2 threads {threaded:6.1f} img/s")


if __name__ == "__main__":
    main()
