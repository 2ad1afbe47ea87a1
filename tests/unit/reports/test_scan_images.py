"""The scan as staff pages show it: JPEG and PNG as stored, DICOM and others as PNG."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from adapters import dicom
from csss_fhir.reports import scan_images
from tests.factories import xray_jpeg, xray_png

LIMIT = 50_000_000


def test_jpeg_and_png_are_served_as_stored():
    for data, content_type in ((xray_jpeg(64), "image/jpeg"), (xray_png(64), "image/png")):
        assert scan_images.for_browser(data, content_type, max_pixels=LIMIT) == (data, content_type)


def test_another_raster_becomes_a_png_of_the_same_pixels():
    pixels = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    tiff = cv2.imencode(".tiff", pixels)[1].tobytes()
    data, content_type = scan_images.for_browser(tiff, "image/tiff", max_pixels=LIMIT)
    assert content_type == "image/png" and data.startswith(b"\x89PNG")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(decoded, pixels)


def test_dicom_becomes_a_png_of_its_rendered_frame():
    path = get_testdata_file("CT_small.dcm", download=False)
    if path is None:
        pytest.skip("CT_small.dcm is not installed (pip install pydicom-data)")
    with open(path, "rb") as handle:
        data = handle.read()
    png, content_type = scan_images.for_browser(data, dicom.DICOM_CONTENT_TYPE,
                                                max_pixels=LIMIT)
    assert content_type == "image/png"
    decoded = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    assert np.array_equal(decoded, dicom.read_dicom(data, max_pixels=LIMIT).rgb)
