"""The pictures a report shows: the scan, and the classifier's Grad-CAM overlay of it."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def gradcam_overlay(provider: Any, image: bytes, class_name: str | None = None) -> bytes | None:
    """The Grad-CAM heatmap of `class_name` (default: the top class) over the scan, as PNG.

    None when the classifier cannot give one (no model, a model without Grad-CAM outputs, an
    image it cannot decode): the report is released without the overlay, never held back.
    """
    try:
        from ml.gradcam import overlay_png

        classifier = provider.get()
        heatmap = classifier.gradcam(image, class_name)
        return overlay_png(image, heatmap, max_side=384)
    except Exception:  # noqa: BLE001 - any failure here only costs the picture
        log.warning("Grad-CAM overlay unavailable", exc_info=True)
        return None
