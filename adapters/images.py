"""Uploaded image validation: what a file really is, judged from its bytes, never its name.

A file is accepted only if it fully decodes. Dimensions are checked from the header before
any pixel is decoded, so a small file that claims 20,000 x 20,000 pixels costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from csss_fhir.errors import InvalidInputError, UnsupportedMediaError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
MAX_SIDE = 16_384


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
    return ImageInfo(format=kind, content_type=f"image/{kind}", width=width, height=height)
