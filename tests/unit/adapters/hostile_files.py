"""Hostile upload files, generated (never committed): bombs, lies about size, deep nesting.

Each is small on disk and would cost a careless decoder far more than it weighs.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

_CHUNK = 1 << 20


def _meta(transfer_syntax: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta)
    return b"\x00" * 128 + b"DICM" + buffer.getvalue()


def _explicit(dataset: Dataset) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, dataset)
    return buffer.getvalue()


def _image_header(rows: int, columns: int, frames: int = 1, bits: int = 16) -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = SecondaryCaptureImageStorage
    dataset.SOPInstanceUID = generate_uid()
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "DX"
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    if frames > 1:
        dataset.NumberOfFrames = frames
    dataset.Rows, dataset.Columns = rows, columns
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = bits, bits, bits - 1
    dataset.PixelRepresentation = 0
    return dataset


def _pixel_data_header(length: int) -> bytes:
    return struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OW", 0, length)


def deflate_bomb(inflated_bytes: int) -> bytes:
    """A Deflated Explicit VR Little Endian image whose pixel data inflates to about
    `inflated_bytes` of zeros (deflate packs zeros about 1000:1)."""
    side = 4096
    frame = 2 * side * side
    frames, rows = max(1, inflated_bytes // frame), min(side, max(1, inflated_bytes // 2 // side))
    length = 2 * frames * rows * side
    head = _explicit(_image_header(rows, side, frames)) + _pixel_data_header(length)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [compressor.compress(head)]
    for chunk in _zeros(length):
        parts.append(compressor.compress(chunk))
    parts.append(compressor.flush())
    return _meta(DeflatedExplicitVRLittleEndian) + b"".join(parts)


def _zeros(total: int) -> Iterator[bytes]:
    chunk = bytes(_CHUNK)
    while total > 0:
        yield chunk[:total]
        total -= _CHUNK


def declared_huge(rows: int, columns: int, frames: int) -> bytes:
    """An uncompressed image whose header declares rows x columns x frames 16-bit pixels
    but carries only a few bytes of them."""
    head = _explicit(_image_header(rows, columns, frames))
    return _meta(ExplicitVRLittleEndian) + head + _pixel_data_header(4) + bytes(4)


def deeply_nested(depth: int) -> bytes:
    """A data set with `depth` Content Sequences (0040,A730) nested in each other, all of
    undefined length, and no pixel data."""
    head = _explicit(_image_header(1, 1))
    open_one = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + \
        struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    close_one = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return _meta(ExplicitVRLittleEndian) + head + open_one * depth + close_one * depth


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int, height: int, *, bits: int = 8, colour: int = 0,
        rows: int | None = None) -> bytes:
    """A PNG whose IHDR claims width x height (colour type 0 gray, 2 RGB), with `rows` rows of
    zero pixels in its data (all of them by default): fewer rows is a file whose data stops."""
    channels = {0: 1, 2: 3}[colour]
    row = b"\x00" + bytes(width * channels * bits // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows))
    ihdr = struct.pack(">IIBBBBB", width, height, bits, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", data + compressor.flush()) + _png_chunk(b"IEND", b""))


def jpeg_header_claiming(width: int, height: int, components: int = 3) -> bytes:
    """A JPEG whose baseline frame header (SOF0) claims width x height, and nothing else."""
    sof = struct.pack(">BHHB", 8, height, width, components) + \
        b"".join(bytes([index + 1, 0x11, 0]) for index in range(components))
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return (b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
            + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9")
