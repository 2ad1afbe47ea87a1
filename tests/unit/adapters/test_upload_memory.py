"""Hostile uploads are refused for the cost of their header, measured in a fresh process.

`benchmarks/upload_bombs.py` prints the same figures for any checkout (before/after).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.adapters import hostile_files

ROOT = Path(__file__).resolve().parents[3]
PROBE = """
import resource, sys
data = open(sys.argv[1], "rb").read()
from adapters import dicom, images
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    if sys.argv[1].endswith(".dcm"):
        dicom.read_dicom(data, max_pixels=50_000_000)
    else:
        images.validate_raster(data, max_pixels=50_000_000)
except Exception as error:
    print(type(error).__name__)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


@pytest.mark.parametrize("name, make, refusal", [
    ("bomb.dcm", lambda: hostile_files.deflate_bomb(1 << 28), "InflatedTooLargeError"),
    ("nested.dcm", lambda: hostile_files.deeply_nested(20_000), "NestedTooDeepError"),
    ("rgb16.png", lambda: hostile_files.png(5000, 5000, bits=16, colour=2),
     "ImageTooLargeError"),
])
def test_refusal_costs_under_32_mb_of_peak_memory(tmp_path, name, make, refusal):
    path = tmp_path / name
    path.write_bytes(make())
    result = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    outcome, growth_kb = result.stdout.split()
    assert outcome == refusal
    # Before the fix: about twice the inflated 256 MB, a RecursionError, 93 MB.
    assert int(growth_kb) < 32 * 1024
