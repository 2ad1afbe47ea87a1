"""Upload validation judges files by their bytes, fully decodes them, and bounds their size."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from adapters.images import ImageTooLargeError, read_header, sniff_format, validate_raster
from csss_fhir.errors import InvalidInputError, UnsupportedMediaError
from ml.preprocessing import preprocess
from tests.factories import xray_jpeg, xray_png
from tests.unit.adapters import hostile_files

LIMIT = 50_000_000


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny (short) IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b""))


def test_valid_png_and_jpeg_are_described():
    png = validate_raster(xray_png(300), max_pixels=LIMIT)
    assert (png.format, png.content_type, png.width, png.height) == ("png", "image/png", 300, 300)
    jpeg = validate_raster(xray_jpeg(200), max_pixels=LIMIT)
    assert (jpeg.format, jpeg.width) == ("jpeg", 200)


def test_empty_file_is_invalid():
    with pytest.raises(InvalidInputError, match="empty"):
        validate_raster(b"", max_pixels=LIMIT)


def test_text_named_png_is_unsupported_media():
    with pytest.raises(UnsupportedMediaError):
        validate_raster(b"hello, I am not an image\n" * 10, max_pixels=LIMIT)


def test_truncated_png_is_invalid():
    data = xray_png(256)
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        validate_raster(data[: len(data) // 2], max_pixels=LIMIT)


def test_huge_dimensions_are_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="pixels"):
        validate_raster(png_header_claiming(20_000, 20_000), max_pixels=LIMIT)
    with pytest.raises(ImageTooLargeError, match="9000x9000"):
        validate_raster(png_header_claiming(9_000, 9_000), max_pixels=LIMIT)


def test_sniffing_ignores_names_and_finds_dicom_preamble():
    assert sniff_format(b"\x00" * 128 + b"DICM" + b"\x00" * 10) == "dicom"
    assert sniff_format(b"GIF89a") is None


@pytest.mark.parametrize("data", [
    b"\x00" * 128 + b"DICM",  # the shortest Part 10 prefix
    b"\x00" * 128 + b"DIC",  # cut inside the marker
    b"\x00" * 127 + b"DICM",  # the marker one byte early
    b"DICM" + b"\x00" * 200,  # no preamble
])
def test_sniffing_calls_dicom_what_the_dicom_adapter_reads(data):
    from adapters import dicom

    assert (sniff_format(data) == "dicom") is dicom.is_dicom(data)
    assert (sniff_format(data) == "dicom") is (data[128:132] == b"DICM")


def test_sixteen_bit_colour_png_is_accepted_and_classifiable():
    pixels = np.random.default_rng(0).integers(0, 65535, (64, 48, 3), dtype=np.uint16)
    data = cv2.imencode(".png", pixels)[1].tobytes()
    assert validate_raster(data, max_pixels=LIMIT).width == 48
    batch = preprocess(data, (64, 48))  # what $classify runs (min-max scaled, no resize)
    assert batch.shape == (64, 48, 3) and (batch.min(), batch.max()) == (0.0, 1.0)


def test_png_whose_data_stops_after_one_row_is_refused():
    data = hostile_files.png(64, 64, rows=1)
    with pytest.raises(InvalidInputError, match="cannot be decoded for classification"):
        validate_raster(data, max_pixels=LIMIT)
    assert validate_raster(hostile_files.png(64, 64), max_pixels=LIMIT).height == 64


def test_decoded_bytes_are_bounded_from_the_header_before_decoding():
    # 6,000 x 6,000 is within the pixel limit, but as 16-bit RGB it decodes to 216 MB.
    with pytest.raises(ImageTooLargeError, match="3 channel.s. of 16 bits"):
        validate_raster(hostile_files.png(6_000, 6_000, bits=16, colour=2, rows=1),
                        max_pixels=LIMIT)
    with pytest.raises(ImageTooLargeError, match="9000x9000"):
        validate_raster(hostile_files.jpeg_header_claiming(9_000, 9_000), max_pixels=LIMIT)


def test_header_is_read_from_ihdr_and_sof():
    png = read_header(hostile_files.png(30, 20, bits=16, colour=2), "png")
    assert (png.width, png.height, png.channels, png.bytes_per_sample) == (30, 20, 3, 2)
    jpeg = read_header(xray_jpeg(200), "jpeg")
    assert (jpeg.width, jpeg.height, jpeg.channels, jpeg.bytes_per_sample) == (200, 200, 1, 1)
    with pytest.raises(InvalidInputError, match="cut short"):
        read_header(xray_jpeg(200)[:4], "jpeg")
