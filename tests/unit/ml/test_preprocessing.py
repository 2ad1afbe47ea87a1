"""ml.preprocessing: the paper's decode → RGB → bilinear resize → /255, and strict errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.preprocessing import ImageDecodeError, decode_image, prepare_rgb, preprocess, to_uint8

from .conftest import make_image


def paper_preprocess(data: bytes, size: int) -> np.ndarray:
    """The seed paper's code path, verbatim: imread colour → BGR2RGB → resize → /255."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return cv2.resize(rgb, (size, size)).astype(np.float32) / 255.0


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_grayscale_files_match_the_paper_pipeline_exactly(extension):
    gray = cv2.resize(make_image(0, np.random.default_rng(3)), (300, 260))
    data = cv2.imencode(extension, gray)[1].tobytes()
    np.testing.assert_array_equal(preprocess(data, (224, 224)), paper_preprocess(data, 224))


def test_colour_files_match_the_paper_pipeline_exactly(png_bytes):
    np.testing.assert_array_equal(preprocess(png_bytes, (32, 32)), paper_preprocess(png_bytes, 32))


def test_output_is_float32_rgb_in_unit_range(png_bytes):
    x = preprocess(png_bytes, (20, 30))
    assert x.shape == (20, 30, 3) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0


def test_arrays_are_taken_as_rgb_and_gray_is_replicated():
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[..., 0] = 255  # red
    assert prepare_rgb(rgb, (10, 10))[0, 0].tolist() == [255, 0, 0]
    gray = np.full((10, 12), 7, np.uint8)
    assert prepare_rgb(gray, (5, 5)).tolist() == np.full((5, 5, 3), 7).tolist()


def test_16_bit_input_is_min_max_scaled():
    array = np.linspace(1000, 5000, 64, dtype=np.uint16).reshape(8, 8)
    png16 = cv2.imencode(".png", array)[1].tobytes()
    decoded = decode_image(png16)
    assert decoded.dtype == np.uint8 and decoded.min() == 0 and decoded.max() == 255
    np.testing.assert_array_equal(prepare_rgb(array, (8, 8))[..., 0], decoded)


def test_alpha_is_dropped():
    rgba = np.full((6, 6, 4), 200, np.uint8)
    data = cv2.imencode(".png", rgba)[1].tobytes()
    assert decode_image(data).shape == (6, 6, 3)


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_undecodable_bytes_raise_image_decode_error(data):
    with pytest.raises(ImageDecodeError) as info:
        preprocess(data, (32, 32))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "array",
    [np.zeros((4, 4, 2), np.uint8), np.zeros((4,), np.uint8), np.zeros((4, 4), np.float32),
     np.zeros((0, 4), np.uint8)],
)
def test_arrays_that_are_not_images_raise(array):
    with pytest.raises(ImageDecodeError):
        prepare_rgb(array, (8, 8))


def test_other_types_raise():
    with pytest.raises(ImageDecodeError):
        prepare_rgb("scan.png", (8, 8))  # a path is not an image


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_16_bit_scaling_rounds_to_nearest(dtype):
    array = np.random.default_rng(2).integers(-300 if dtype == np.int16 else 0, 4096, (64, 64))
    array = array.astype(dtype)
    low, high = float(array.min()), float(array.max())
    expected = np.rint((array - low) * 255.0 / (high - low)).astype(np.uint8)
    np.testing.assert_array_equal(to_uint8(array), expected)
    assert to_uint8(np.full((3, 3), 9, dtype)).max() == 0  # flat image: black, not NaN
