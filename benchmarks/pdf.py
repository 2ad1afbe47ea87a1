"""PDF generation speed: median time to render a two-page report (target: under 100 ms).

    .venv/bin/python benchmarks/pdf.py [--runs 30]

Renders the sample report (Tamil, Chinese and accented Latin text, a 512 px scan and a
Grad-CAM-sized overlay, three prescriptions, long notes) in this process after one warm-up
render (which also loads the fonts), and prints the median, p90 and the size and page count.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pypdf import PdfReader

from csss_fhir.reports.pdf import render_pdf
from csss_fhir.reports.sample import sample_content
from tests.factories import xray_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    content = sample_content(image=xray_png(512), gradcam=xray_png(384, seed=3))
    started = time.perf_counter()
    pdf = render_pdf(content)
    first = time.perf_counter() - started
    timings = []
    for _ in range(args.runs):
        started = time.perf_counter()
        render_pdf(content)
        timings.append(time.perf_counter() - started)
    timings.sort()
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"pages {pages}, size {len(pdf) / 1024:.0f} KiB, runs {args.runs}")
    print(f"first render (loads fonts) {first * 1000:.0f} ms")
    print(f"median {statistics.median(timings) * 1000:.1f} ms, "
          f"p90 {timings[int(0.9 * (len(timings) - 1))] * 1000:.1f} ms, "
          f"min {timings[0] * 1000:.1f} ms (target < 100 ms)")


if __name__ == "__main__":
    main()
