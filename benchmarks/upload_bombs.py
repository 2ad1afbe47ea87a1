"""Peak memory that hostile uploads cost the upload checks, in a fresh process per file.

Generates the files (deflate bomb, deep nesting, declared-huge DICOM, 16-bit colour PNG,
PNG whose data stops after one row, and for scale the largest files still accepted), runs
`adapters.images.validate_raster` or `adapters.dicom.read_dicom` on each in a subprocess and
prints how far the peak resident set grew (ru_maxrss) and the outcome. Pass another checkout
to measure it with the same files.
Run: .venv/bin/python benchmarks/upload_bombs.py [CHECKOUT]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.unit.adapters import hostile_files  # noqa: E402

MAX_PIXELS = 50_000_000  # the default `Settings.max_image_pixels`

PROBE = """
import resource, sys
data = open(sys.argv[1], "rb").read()
from adapters import dicom, images
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if sys.argv[1].endswith(".dcm"):
        dicom.read_dicom(data, max_pixels=int(sys.argv[2]))
    else:
        images.validate_raster(data, max_pixels=int(sys.argv[2]))
    outcome = "accepted"
except Exception as error:  # noqa: BLE001 - report whatever the checks raise
    outcome = type(error).__name__
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"{growth / 1024:.0f} {outcome}")
"""


def cases() -> dict[str, bytes]:
    return {
        "deflate-bomb-1GB.dcm": hostile_files.deflate_bomb(1 << 30),
        "nested-20000.dcm": hostile_files.deeply_nested(20_000),
        "declared-65535x65535x1000.dcm": hostile_files.declared_huge(65535, 65535, 1000),
        "declared-4096x4096x1000.dcm": hostile_files.declared_huge(4096, 4096, 1000),
        "rgb16-5000x5000.png": hostile_files.png(5000, 5000, bits=16, colour=2),
        "one-row-of-4000x4000.png": hostile_files.png(4000, 4000, rows=1),
        # the largest files still accepted, for scale: at the decoded-bytes limit
        "gray16-7000x7000.png": hostile_files.png(7000, 7000, bits=16),
        "deflated-4096x4096x3-frames.dcm": hostile_files.deflate_bomb(3 * 2 * 4096 * 4096),
    }


def peak_growth(checkout: Path, path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), str(MAX_PIXELS)], capture_output=True,
        text=True, timeout=600, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)})
    if result.returncode != 0:
        return f"- crashed (exit {result.returncode})"
    return result.stdout.strip()


def main() -> None:
    checkout = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    print(f"checkout: {checkout}\n{'file':34} {'size':>10} {'peak +MB':>9}  outcome")
    with tempfile.TemporaryDirectory() as folder:
        for name, data in cases().items():
            path = Path(folder) / name
            path.write_bytes(data)
            growth, _, outcome = peak_growth(checkout, path).partition(" ")
            print(f"{name:34} {len(data):>10,} {growth:>9}  {outcome}")


if __name__ == "__main__":
    main()
