"""Uploaded image validation: what a file really is, judged from its bytes, never its name.

A file is accepted only if it fully decodes twice: strictly with Pillow (which refuses a
truncated JPEG that OpenCV would fill with grey) and with `ml.preprocessing.decode_image`,
the very decoder the classifier runs, so that an accepted file can always be classified.

Before either decoder runs, the dimensions, bit depth and channels are read from the header
(PNG IHDR, JPEG SOF) and the decoded size is bounded: a small file that claims 20,000 x 20,000
pixels, or a 16-bit colour PNG that decodes to gigabytes, costs nothing. The header is read
here because neither decoder can be bounded per call: Pillow's `MAX_IMAGE_PIXELS` only warns
below twice its value, and OpenCV reads `OPENCV_IO_MAX_IMAGE_PIXELS` once, at import.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
from PIL import Image, UnidentifiedImageError

from csss_fhir.errors import InvalidInputError, UnsupportedMediaError
from ml.preprocessing import ImageDecodeError, decode_image

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
MAX_SIDE = 16_384
# Decoded bytes allowed per pixel of the pixel limit: a 16-bit grayscale radiograph at the
# full limit (the largest thing a chest X-ray needs). 8-bit colour gets two thirds of the
# pixels, 16-bit colour a third; both still far above any chest detector (about 4,300 x 4,300).
BYTES_PER_PIXEL = 2
# Channels a decoder holds for each PNG colour type (palette images decode to RGB, and
# libpng expands RGBA before the alpha is dropped).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (ITU T.81 B.1.1.3): every SOFn except DHT (C4), JPG (C8), DAC
# (CC), and JPEG-LS's SOF55 (F7, ITU T.87), which DICOM files use.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC} | {0xF7}


class ImageTooLargeError(InvalidInputError):
    """The image's pixel dimensions exceed the limit (decompression-bomb guard)."""


@dataclass(frozen=True)
class ImageInfo:
    format: str  # "jpeg" | "png" | "dicom"
    content_type: str
    width: int
    height: int


def sniff_format(data: bytes) -> str | None:
    """Name the container format from its magic bytes, or None."""
    if data.startswith(PNG_MAGIC):
        return "png"
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    # Imported here: adapters.dicom imports this module (check_dimensions), and it owns
    # what makes a DICOM file (the 128-byte preamble, then b"DICM").
    from adapters.dicom import is_dicom

    if is_dicom(data):
        return "dicom"
    return None


@dataclass(frozen=True)
class RasterHeader:
    width: int
    height: int
    channels: int
    bytes_per_sample: int

    @property
    def decoded_bytes(self) -> int:
        return self.width * self.height * self.channels * self.bytes_per_sample


def max_decoded_bytes(max_pixels: int) -> int:
    """The most memory one decoded image (all frames, samples and bits) may take."""
    return BYTES_PER_PIXEL * max_pixels


def read_header(data: bytes, kind: str) -> RasterHeader:
    """Dimensions, channels and sample size from a PNG IHDR or a JPEG SOF, decoding nothing.

    Raises:
        InvalidInputError: the header is missing, cut short or inconsistent.
    """
    try:
        if kind == "png":
            if data[12:16] != b"IHDR":
                raise InvalidInputError("the PNG file has no IHDR chunk first; it is corrupt")
            width, height, depth, colour = struct.unpack_from(">IIBB", data, 16)
            if colour not in _PNG_CHANNELS:
                raise InvalidInputError(f"the PNG colour type is {colour}; expected 0, 2, 3, "
                                        "4 or 6 (the file is corrupt)")
            return RasterHeader(width, height, _PNG_CHANNELS[colour], 2 if depth == 16 else 1)
        position = 2
        while True:  # JPEG: walk the marker segments up to the frame header
            marker, length = struct.unpack_from(">xBH", data, position)
            if marker in _JPEG_SOF:
                precision, height, width, components = struct.unpack_from(">BHHB", data,
                                                                          position + 4)
                return RasterHeader(width, height, components, 2 if precision > 8 else 1)
            if marker == 0xDA:  # start of scan before any frame header
                raise InvalidInputError("the JPEG file has no frame header (SOF) before its "
                                        "image data; it is corrupt")
            position += 2 + length
    except struct.error as err:
        raise InvalidInputError(f"the {kind.upper()} header is cut short; the file is "
                                "truncated") from err


def check_decoded_size(header: RasterHeader, max_pixels: int) -> None:
    """Refuse an image whose header promises more pixels or decoded bytes than allowed.

    Raises:
        ImageTooLargeError: too many pixels, or too many decoded bytes (deep colour).
    """
    check_dimensions(header.width, header.height, max_pixels)
    limit = max_decoded_bytes(max_pixels)
    if header.decoded_bytes > limit:
        raise ImageTooLargeError(
            f"the image is {header.width}x{header.height} pixels with {header.channels} "
            f"channel(s) of {8 * header.bytes_per_sample} bits: {header.decoded_bytes:,} bytes "
            f"decoded; the limit is {limit:,} bytes. Send an 8-bit or grayscale copy, or a "
            "downscaled one.")


def check_dimensions(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"the image claims {width}x{height} pixels; it is corrupt")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > max_pixels:
        raise ImageTooLargeError(
            f"the image is {width}x{height} pixels; the limit is {max_pixels:,} pixels and "
            f"{MAX_SIDE} per side. Send a downscaled copy."
        )


def validate_raster(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Validate a JPEG or PNG completely (header, size, full decode) and describe it.

    Raises:
        InvalidInputError: empty, truncated or corrupt file; ImageTooLargeError for huge ones.
        UnsupportedMediaError: the bytes are not JPEG or PNG.
    """
    if not data:
        raise InvalidInputError("the uploaded file is empty")
    kind = sniff_format(data)
    if kind not in ("png", "jpeg"):
        raise UnsupportedMediaError(
            "the file is not a JPEG or PNG image (judged from its content, not its name); "
            "send JPEG, PNG or DICOM"
        )
    check_decoded_size(read_header(data, kind), max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["PNG" if kind == "png" else "JPEG"]) as im:
                width, height = im.size
                check_dimensions(width, height, max_pixels)
                im.load()  # decodes every pixel: truncated or corrupt data fails here
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # Pillow's own guard fired while reading the header (far above our limit).
        raise ImageTooLargeError(
            f"the image has too many pixels ({err}); the limit is {max_pixels:,} pixels. "
            "Send a downscaled copy."
        ) from err
    except UnidentifiedImageError as err:
        raise InvalidInputError(f"the {kind.upper()} file cannot be read") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise InvalidInputError(
            f"the {kind.upper()} file is truncated or corrupt and cannot be decoded"
        ) from err
    _check_classifiable(data, kind)
    return ImageInfo(format=kind, content_type=f"image/{kind}", width=width, height=height)


def _check_classifiable(data: bytes, kind: str) -> None:
    """Decode with the classifier's own decoder: what it cannot read is refused now, not at
    every `$classify` (Pillow accepts a PNG whose data stops after one row; OpenCV does not).

    Raises:
        InvalidInputError: OpenCV cannot decode the file.
    """
    try:
        decode_image(data)
    except (ImageDecodeError, cv2.error) as err:
        raise InvalidInputError(
            f"the {kind.upper()} file cannot be decoded for classification (its image data is "
            "incomplete or in a form the classifier cannot read); send an 8-bit JPEG or PNG"
        ) from err
