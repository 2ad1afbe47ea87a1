"""The scan as staff pages show it: JPEG and PNG as stored, other formats as PNG."""

from __future__ import annotations

import cv2
import numpy as np

from csss_fhir.reports import scan_images
from tests.factories import xray_jpeg, xray_png


def test_jpeg_and_png_are_served_as_stored():
    for data, content_type in ((xray_jpeg(64), "image/jpeg"), (xray_png(64), "image/png")):
        assert scan_images.for_browser(data, content_type) == (data, content_type)


def test_another_raster_becomes_a_png_of_the_same_pixels():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    tiff = cv2.imencode(".tiff", pixels)[1].tobytes()
    data, content_type = scan_images.for_browser(tiff, "image/tiff")
    assert content_type == "image/png" and data.startswith(b"\x89PNG")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, pixels)
