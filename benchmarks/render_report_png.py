"""Render a sample report and turn its pages into PNGs for a person to look at.

    .venv/bin/python benchmarks/render_report_png.py [--out test-artifacts] [--dpi 110]

Writes report.pdf and report-1.png, report-2.png ... (pdftoppm, Debian poppler-utils).
The sample has a Tamil patient, a Chinese pharmacist, an accented Latin doctor, the
synthetic test X-ray and, when the demo classifier loads, its real Grad-CAM overlay.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csss_fhir.reports.pdf import render_pdf  # noqa: E402
from csss_fhir.reports.sample import sample_content  # noqa: E402
from csss_fhir.reports.scan_images import gradcam_overlay  # noqa: E402
from tests.factories import xray_png  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts")
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    image = xray_png(512)
    try:
        from csss_fhir.classifier import ClassifierProvider

        overlay = gradcam_overlay(ClassifierProvider(None), image)
    except Exception as err:
        print(f"no Grad-CAM overlay: {err}", file=sys.stderr)
        overlay = None
    pdf = args.out / "report.pdf"
    pdf.write_bytes(render_pdf(sample_content(image=image, gradcam=overlay)))
    print(pdf)
    if shutil.which("pdftoppm") is None:
        print("pdftoppm not found: apt-get install poppler-utils", file=sys.stderr)
        return 1
    subprocess.run(["pdftoppm", "-png", "-r", str(args.dpi), str(pdf),
                    str(args.out / "report")], check=True)
    for png in sorted(args.out.glob("report-*.png")):
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
