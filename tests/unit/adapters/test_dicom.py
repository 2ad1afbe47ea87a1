"""adapters/dicom.py on real DICOM files shipped by pydicom and pydicom-data."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from adapters import dicom, dicom_stream
from adapters.images import ImageTooLargeError
from csss_fhir.errors import (
    ConflictError,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableContentError,
    UnsupportedMediaError,
)
from tests.factories import dicom_sample
from tests.unit.adapters import hostile_files

LIMIT = 50_000_000



@pytest.mark.parametrize("name, modality, size", [
    ("CT_small.dcm", "CT", (128, 128)),
    ("MR_small.dcm", "MR", (64, 64)),
    ("MR_small_jpeg_ls_lossless.dcm", "MR", (64, 64)),
    ("MR_small_RLE.dcm", "MR", (64, 64)),
    ("JPEG2000.dcm", "NM", (1024, 256)),
    ("SC_rgb_jpeg_dcmtk.dcm", "OT", (100, 100)),
    ("examples_palette.dcm", "US", (350, 800)),
])
def test_compressed_and_uncompressed_files_render_to_8_bit_rgb(name, modality, size):
    image = dicom.read_dicom(dicom_sample(name), max_pixels=LIMIT)
    assert image.rgb.dtype == np.uint8 and image.rgb.shape == (*size, 3)
    assert image.rgb.max() > image.rgb.min()  # not a blank frame
    assert image.metadata.modality == modality


def test_lossless_codecs_decode_to_the_same_pixels_as_the_uncompressed_file():
    plain = dicom.read_dicom(dicom_sample("MR_small.dcm"), max_pixels=LIMIT).rgb
    for name in ("MR_small_jpeg_ls_lossless.dcm", "MR_small_RLE.dcm"):
        assert np.array_equal(dicom.read_dicom(dicom_sample(name), max_pixels=LIMIT).rgb, plain)


def test_chest_radiograph_is_inverted_monochrome1_with_its_header():
    data = dicom_sample("RG1_UNCR.dcm")
    image = dicom.read_dicom(data, max_pixels=LIMIT)
    header = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    meta = image.metadata
    assert (meta.modality, meta.body_part, meta.photometric) == ("CR", "CHEST", "MONOCHROME1")
    assert (meta.height, meta.width) == (header.Rows, header.Columns) == (1955, 1841)
    assert meta.study_uid == header.StudyInstanceUID
    assert meta.instance_uid == header.SOPInstanceUID
    assert meta.patient_id == header.PatientID
    assert meta.started.strftime("%Y%m%d%H%M%S") == header.StudyDate + header.StudyTime[:6]
    # MONOCHROME1: raw 0 is white. After inversion the collimated border is dark.
    raw = pydicom.dcmread(io.BytesIO(data)).pixel_array
    brightest_raw = np.unravel_index(np.argmax(raw), raw.shape)
    assert image.rgb[brightest_raw][0] < 64


def test_jpeg_2000_variants_of_the_radiograph_match_the_uncompressed_one():
    plain = dicom.read_dicom(dicom_sample("RG1_UNCR.dcm"), max_pixels=LIMIT).rgb.astype(int)
    lossless = dicom.read_dicom(dicom_sample("RG1_J2KR.dcm"), max_pixels=LIMIT).rgb.astype(int)
    lossy = dicom.read_dicom(dicom_sample("RG1_J2KI.dcm"), max_pixels=LIMIT).rgb.astype(int)
    assert np.abs(lossless - plain).max() <= 1
    assert np.abs(lossy - plain).mean() < 3


def test_multi_frame_renders_the_middle_frame():
    image = dicom.read_dicom(dicom_sample("emri_small.dcm"), max_pixels=LIMIT)
    assert image.metadata.frames == 10 and image.frame_index == 5
    frames = pydicom.dcmread(get_testdata_file("emri_small.dcm", download=False)).pixel_array
    middle = frames[5].astype(float)
    rendered = image.rgb[..., 0].astype(float)
    assert np.corrcoef(middle.ravel(), rendered.ravel())[0, 1] > 0.99


def test_file_without_pixel_data_is_refused_as_unprocessable():
    with pytest.raises(dicom.NoPixelDataError, match="Pixel Data"):
        dicom.read_dicom(dicom_sample("rtplan.dcm"), max_pixels=LIMIT)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file_is_refused_as_corrupt(cut):
    data = dicom_sample("RG1_UNCR.dcm")
    with pytest.raises(dicom.CorruptDicomError):
        dicom.read_dicom(data[:int(len(data) * cut)], max_pixels=LIMIT)


def test_header_cut_short_is_refused_as_corrupt():
    with pytest.raises(dicom.CorruptDicomError, match="truncated"):
        dicom.read_dicom(dicom_sample("CT_small.dcm")[:1000], max_pixels=LIMIT)


def test_unsupported_transfer_syntax_is_415_naming_the_uid_and_the_accepted_ones():
    dataset = pydicom.dcmread(get_testdata_file("JPEG2000.dcm"))  # encapsulated pixel data
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(dicom.DicomNotDecodableError) as refused:
        dicom.read_dicom(buffer.getvalue(), max_pixels=LIMIT)
    assert "1.2.840.10008.1.2.4.100" in str(refused.value)
    assert "1.2.840.10008.1.2.4.90" in str(refused.value)  # JPEG 2000 is offered
    assert isinstance(refused.value, UnsupportedMediaError)


def test_non_dicom_bytes_are_unsupported_media():
    with pytest.raises(UnsupportedMediaError, match="not a DICOM"):
        dicom.read_dicom(b"hello, this is not DICOM" * 20, max_pixels=LIMIT)


def test_dimensions_are_checked_before_decoding():
    with pytest.raises(ImageTooLargeError):
        dicom.read_dicom(dicom_sample("RG1_UNCR.dcm"), max_pixels=1_000_000)


def test_undecodable_pixel_data_is_refused_as_corrupt():
    # A 12-bit JPEG Extended file that neither libjpeg nor Pillow can decode.
    with pytest.raises(dicom.CorruptDicomError, match="1.2.840.10008.1.2.4.51"):
        dicom.read_dicom(dicom_sample("JPEG-lossy.dcm"), max_pixels=LIMIT)


def test_stripping_removes_names_and_birth_date_but_keeps_ids_and_pixels():
    data = dicom_sample("MR_small.dcm")
    stripped = pydicom.dcmread(io.BytesIO(dicom.strip_identifying(data, max_pixels=LIMIT)))
    original = pydicom.dcmread(io.BytesIO(data))
    assert "PatientName" in original
    assert "PatientName" not in stripped and "PatientBirthDate" not in stripped
    assert stripped.PatientID == original.PatientID
    assert stripped.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(stripped.pixel_array, original.pixel_array)


def test_reading_never_logs_or_warns_with_patient_names(caplog, recwarn):
    data = dicom_sample("MR_small.dcm")
    name = str(pydicom.dcmread(io.BytesIO(data)).PatientName)
    caplog.set_level("DEBUG")
    dicom.read_dicom(data, max_pixels=LIMIT)
    assert name not in caplog.text
    assert all(name not in str(w.message) for w in recwarn)


def test_image_without_pixel_data_is_unprocessable_not_truncated():
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del dataset.PixelData  # a complete file whose header still describes an image
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(dicom.NoPixelDataError, match="Pixel Data"):
        dicom.read_dicom(buffer.getvalue(), max_pixels=LIMIT)


def test_deflated_file_within_the_limit_renders():
    image = dicom.read_dicom(dicom_sample("image_dfl.dcm"), max_pixels=LIMIT)
    assert image.metadata.transfer_syntax == "1.2.840.10008.1.2.1.99"
    assert image.rgb.max() > image.rgb.min()


def test_deflate_bomb_is_refused_before_it_is_inflated():
    bomb = hostile_files.deflate_bomb(64 * 1024 * 1024)
    assert len(bomb) < 100_000
    with pytest.raises(dicom_stream.InflatedTooLargeError, match="inflates to more") as refused:
        dicom.read_dicom(bomb, max_pixels=1_000_000)  # cap: 2 MB of pixels + 4 MiB of header
    assert isinstance(refused.value, PayloadTooLargeError)  # 413


def test_deflated_data_set_cut_short_is_corrupt():
    data = dicom_sample("image_dfl.dcm")
    with pytest.raises(dicom.CorruptDicomError, match="inflated"):
        dicom.read_dicom(data[:len(data) // 2], max_pixels=LIMIT)


@pytest.mark.parametrize("rows, columns, frames, words", [
    (65535, 65535, 1000, "65535x65535"),
    (4096, 4096, 1000, "1000 frame"),
])
def test_declared_pixel_memory_is_refused_before_decoding(rows, columns, frames, words):
    data = hostile_files.declared_huge(rows, columns, frames)
    with pytest.raises(ImageTooLargeError, match=words):
        dicom.read_dicom(data, max_pixels=LIMIT)


def test_deep_sequence_nesting_is_refused_before_pydicom_recurses():
    data = hostile_files.deeply_nested(20_000)
    with pytest.raises(dicom_stream.NestedTooDeepError, match="more than 32 deep") as refused:
        dicom.read_dicom(data, max_pixels=LIMIT)
    assert isinstance(refused.value, UnprocessableContentError)  # 422
    with pytest.raises(dicom_stream.NestedTooDeepError):
        dicom.strip_identifying(data, max_pixels=LIMIT)


def test_nesting_within_the_limit_is_read():
    data = hostile_files.deeply_nested(dicom_stream.MAX_SEQUENCE_DEPTH)
    with pytest.raises(dicom.NoPixelDataError):  # read in full; it just has no image
        dicom.read_dicom(data, max_pixels=LIMIT)


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_frame_larger_than_its_header_is_refused_before_decoding(name):
    dataset = pydicom.dcmread(get_testdata_file(name, download=False))
    dataset.Rows, dataset.Columns = 16, 16  # the codestream inside is larger
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(dicom.CorruptDicomError, match="header says 16x16"):
        dicom.read_dicom(buffer.getvalue(), max_pixels=LIMIT)


def test_jpeg_2000_codestream_claiming_40000_squared_is_refused():
    data = bytearray(dicom_sample("JPEG2000.dcm"))
    siz = data.index(b"\xff\x4f\xff\x51")
    data[siz + 8:siz + 16] = (40_000).to_bytes(4, "big") * 2  # Xsiz, Ysiz
    with pytest.raises(dicom.CorruptDicomError, match="40000x40000"):
        dicom.read_dicom(bytes(data), max_pixels=LIMIT)


# --- DICOMweb and DIMSE helpers ----------------------------------------------------------

def test_describe_reads_the_header_without_decoding_pixels():
    data = dicom_sample("RG1_J2KR.dcm")
    header = dicom.describe(data, max_pixels=50_000_000)
    assert (header.modality, header.patient_id) == ("CR", "9RG1")
    assert header.transfer_syntax == "1.2.840.10008.1.2.4.90"


def test_metadata_json_leaves_out_pixels_and_the_file_meta():
    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    body = dicom.to_dicom_json(dataset)
    assert body["00080060"] == {"vr": "CS", "Value": ["CT"]}
    assert "7FE00010" not in body and not [tag for tag in body if tag.startswith("0002")]


def test_a_compressed_instance_is_decompressed_only_when_asked():
    data = dicom_sample("RG1_J2KR.dcm")
    assert dicom.in_transfer_syntax(data, "*") == data
    assert dicom.in_transfer_syntax(data, "1.2.840.10008.1.2.4.90") == data
    plain = pydicom.dcmread(io.BytesIO(dicom.in_transfer_syntax(data, None)))
    original = pydicom.dcmread(io.BytesIO(data))
    assert plain.file_meta.TransferSyntaxUID == dicom.EXPLICIT_VR_LITTLE_ENDIAN
    assert plain.SOPInstanceUID == original.SOPInstanceUID  # lossless: the same instance
    assert np.array_equal(plain.pixel_array, original.pixel_array)
    with pytest.raises(dicom.DicomNotDecodableError, match="ask for one of them"):
        dicom.in_transfer_syntax(data, "1.2.840.10008.1.2.4.50")


@pytest.mark.parametrize("error, code", [
    (PayloadTooLargeError("big"), 0xA700),
    (OSError("disk full"), 0xA700),
    (dicom.DicomNotDecodableError("no decoder"), 0xC122),
    (ConflictError("another patient"), 0xA900),
    (dicom.NoPixelDataError("no pixels"), 0xC000),
    (InvalidInputError("bad"), 0xC000),
    (RuntimeError("bug"), 0x0110),
])
def test_refusals_map_to_dicom_failure_reasons(error, code):
    assert dicom.failure_reason(error) == code
