"""The pictures a report or a staff page shows: the scan, and the classifier's Grad-CAM
overlay of it."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

BROWSER_TYPES = frozenset({"image/jpeg", "image/png"})


def for_browser(data: bytes, content_type: str, *, max_pixels: int) -> tuple[bytes, str]:
    """The stored scan as a browser can show it, with its content type: JPEG and PNG as
    they are; DICOM rendered as the classifier sees it (`adapters.dicom.read_dicom`), and
    any other raster decoded, both re-encoded as PNG."""
    if content_type in BROWSER_TYPES:
        return data, content_type
    import cv2

    from adapters import dicom
    from ml.preprocessing import decode_image

    if content_type == dicom.DICOM_CONTENT_TYPE:
        pixels = dicom.read_dicom(data, max_pixels=max_pixels).rgb
    else:
        pixels = decode_image(data)
    # decode_image gives RGB; OpenCV encodes BGR.
    ok, encoded = cv2.imencode(".png", pixels[..., ::-1] if pixels.ndim == 3 else pixels)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {pixels.shape} image as PNG")
    return encoded.tobytes(), "image/png"


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
    except Exception:
        log.warning("Grad-CAM overlay unavailable", exc_info=True)
        return None
