"""adapters/dicom_stream.py: the raw walk agrees with pydicom on every file pydicom ships."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from adapters import dicom_stream
from tests.unit.adapters import hostile_files

# pydicom's own deliberately truncated samples.
TRUNCATED = {"rtplan_truncated.dcm", "MR_truncated.dcm",
             "emri_small_jpeg_2k_lossless_too_short.dcm"}


def part10_samples() -> list[Path]:
    """pydicom's test files and pydicom-data's, read from disk (the lookup would download)."""
    folders = {Path(found).parent for name in ("CT_small.dcm", "RG1_UNCR.dcm")
               if (found := get_testdata_file(name, download=False))}
    paths = [path for folder in folders for path in folder.iterdir() if path.is_file()]
    return [path for path in paths if path.read_bytes()[128:132] == b"DICM"]


def test_every_sample_file_is_complete_unless_it_is_truncated():
    samples = part10_samples()
    assert len(samples) > 50
    for path in samples:
        with open(path, "rb") as handle:
            data = handle.read()
        meta = dicom_stream.file_meta(data)
        body, offset = data, meta.data_set_offset
        if dicom_stream.is_deflated(meta.transfer_syntax):
            body, offset = dicom_stream.inflate(data[offset:], limit=10**8), 0
        outline = dicom_stream.outline(body, offset, meta.transfer_syntax)
        name = os.path.basename(path)
        assert outline.complete == (name not in TRUNCATED), name
        assert outline.depth <= 8, name


def test_inflate_counts_before_it_keeps_anything():
    bomb = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = bomb.compress(bytes(20_000_000)) + bomb.flush()
    assert len(dicom_stream.inflate(deflated, limit=20_000_000)) == 20_000_000
    with pytest.raises(dicom_stream.InflatedTooLargeError, match="19,999,999"):
        dicom_stream.inflate(deflated, limit=19_999_999)
    with pytest.raises(zlib.error):
        dicom_stream.inflate(deflated[:-5], limit=20_000_000)


def test_depth_is_counted_and_bounded():
    data = hostile_files.deeply_nested(5)
    meta = dicom_stream.file_meta(data)
    outline = dicom_stream.outline(data, meta.data_set_offset, meta.transfer_syntax)
    assert outline == dicom_stream.Outline(complete=True, depth=5)
    cut = data[:-16]  # the last item and sequence delimiters are missing
    assert not dicom_stream.outline(cut, meta.data_set_offset, meta.transfer_syntax).complete
    deep = hostile_files.deeply_nested(dicom_stream.MAX_SEQUENCE_DEPTH + 1)
    with pytest.raises(dicom_stream.NestedTooDeepError):
        dicom_stream.outline(deep, dicom_stream.file_meta(deep).data_set_offset,
                             meta.transfer_syntax)
