"""DICOM Part 10 files: validate, describe and render them for the classifier (pydicom).

What a file is comes from its bytes. A file is accepted only when its pixel data decodes
completely. Every decoder's output is bounded before it runs: `adapters.dicom_stream` walks the
raw bytes first (a deflated data set is inflated with a cap, sequence nesting is limited, a
truncated file is told from one without pixels), and the pixel memory that the header declares
(rows x columns x frames x samples x bytes) is checked before any pixel is decoded.
Compressed pixel data is decoded by pydicom's plugins (pylibjpeg with its libjpeg and
openjpeg backends: JPEG, JPEG-LS, JPEG 2000; pydicom itself: RLE, deflate, uncompressed), so
the transfer syntaxes we accept are exactly those with a decoder available here.

Patient names, birth dates and other identifying values never leave this module except in
the one field the workflow needs (`PatientID`, to match the upload to its Patient), and
pydicom's own warnings, which may quote element values, are silenced while reading.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi_lut, get_decoder
from pydicom.uid import UID, AllTransferSyntaxes

from adapters import dicom_stream
from adapters.images import ImageTooLargeError, check_dimensions, max_decoded_bytes, read_header
from csss_fhir.errors import (
    ConflictError,
    CsssError,
    InvalidInputError,
    PayloadTooLargeError,
    UnprocessableContentError,
    UnsupportedMediaError,
)

log = logging.getLogger(__name__)

DICOM_CONTENT_TYPE = "application/dicom"
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
_CODE_STRING = re.compile(r"^[A-Z0-9 _]{1,16}$")

_J2K_SIZ = b"\xff\x4f\xff\x51"  # JPEG 2000 codestream: SOC, then the image and tile size marker

# Room for everything but the pixels in an inflated data set (overlays, icons, private data).
_HEADER_ALLOWANCE = 4 * 1024 * 1024

# Attributes removed from the stored copy when identifying tags are stripped (a subset of the
# PS3.15 Annex E Basic Profile: the direct identifiers of the patient and the staff). The
# UIDs stay: they identify the study in FHIR and are not personal data on their own.
IDENTIFYING_KEYWORDS = (
    "PatientName", "PatientBirthDate", "PatientBirthTime", "PatientAddress",
    "PatientTelephoneNumbers", "PatientMotherBirthName", "OtherPatientIDs",
    "OtherPatientIDsSequence", "OtherPatientNames", "PatientBirthName", "MilitaryRank",
    "EthnicGroup", "PatientReligiousPreference", "MedicalRecordLocator", "PatientComments",
    "ReferringPhysicianName", "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers",
    "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "OperatorsName",
    "PhysiciansOfRecord", "RequestingPhysician", "InstitutionName", "InstitutionAddress",
    "InstitutionalDepartmentName", "StationName", "AccessionNumber", "IssuerOfPatientID",
)


def _available_transfer_syntaxes() -> dict[str, str]:
    found: dict[str, str] = {}
    for uid in AllTransferSyntaxes:
        try:
            if get_decoder(uid).is_available:
                found[str(uid)] = uid.name
        except NotImplementedError:
            continue
    return found


SUPPORTED_TRANSFER_SYNTAXES: dict[str, str] = _available_transfer_syntaxes()


class DicomNotDecodableError(UnsupportedMediaError):
    """The DICOM file's transfer syntax has no decoder here."""


class NoPixelDataError(UnprocessableContentError):
    """A valid DICOM object that is not an image (a report, a plan, a structured set...)."""


class CorruptDicomError(InvalidInputError):
    """The DICOM file is truncated or its pixel data does not decode."""


@dataclass(frozen=True)
class DicomMetadata:
    """What the workflow and the ImagingStudy need from the header (no names, no dates of
    birth: only `patient_id`, to match the Patient)."""

    study_uid: str
    series_uid: str
    instance_uid: str
    sop_class_uid: str | None
    modality: str | None
    body_part: str | None
    series_number: int | None
    instance_number: int | None
    started: datetime | None
    study_description: str | None
    series_description: str | None
    patient_id: str | None
    transfer_syntax: str
    width: int
    height: int
    frames: int
    photometric: str


@dataclass(frozen=True)
class DicomImage:
    metadata: DicomMetadata
    rgb: np.ndarray  # height x width x 3, uint8: what the classifier takes
    frame_index: int  # which frame was rendered (the middle one of a multi-frame image)


def is_dicom(data: bytes) -> bool:
    return len(data) >= 132 and data[128:132] == b"DICM"


def _read(data: bytes, *, max_pixels: int) -> tuple[Dataset, dicom_stream.Outline]:
    """Parse the file with pydicom once its raw element stream is known to be bounded.

    A deflated data set may inflate to no more than the largest pixel data we accept plus
    `_HEADER_ALLOWANCE`: anything larger would be refused by the pixel-memory check anyway.
    """
    if not is_dicom(data):
        raise UnsupportedMediaError(
            "the file is not a DICOM Part 10 file (no 'DICM' marker at byte 128; judged from "
            "its content, not its name); send DICOM, JPEG or PNG")
    meta = dicom_stream.file_meta(data)
    body, offset = data, meta.data_set_offset
    if dicom_stream.is_deflated(meta.transfer_syntax):
        try:
            body = dicom_stream.inflate(
                data[offset:], limit=max_decoded_bytes(max_pixels) + _HEADER_ALLOWANCE)
        except zlib.error as err:
            raise CorruptDicomError("the deflated DICOM data set is truncated or corrupt and "
                                    "cannot be inflated") from err
        offset = 0
    outline = dicom_stream.outline(body, offset, meta.transfer_syntax)
    del body  # pydicom inflates again below, now known to stay under the cap
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom's warnings may quote element values
            dataset = pydicom.dcmread(io.BytesIO(data))
            dataset.file_meta  # noqa: B018 - touch the meta group: a broken one fails here
    except InvalidDicomError as err:
        raise UnsupportedMediaError(f"the DICOM file cannot be read: {err}") from err
    except (EOFError, OSError, ValueError, KeyError, TypeError, NotImplementedError) as err:
        raise CorruptDicomError("the DICOM file is truncated or corrupt and cannot be read"
                                ) from err
    return dataset, outline


def _text(dataset: Dataset, keyword: str, limit: int) -> str | None:
    try:
        value = dataset.get(keyword)
    except Exception:
        return None
    if value is None:
        return None
    text = str(value).strip().replace("\x00", "")
    return text[:limit] or None


def _int(dataset: Dataset, keyword: str) -> int | None:
    text = _text(dataset, keyword, 12)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def _uid(dataset: Dataset, keyword: str, tag: str) -> str:
    value = _text(dataset, keyword, 100)
    if not value:
        raise UnprocessableContentError(
            f"the DICOM file has no {keyword} {tag}; every image must carry the study, series "
            "and instance UIDs")
    if len(value) > 64 or not _UID.match(value):
        raise UnprocessableContentError(
            f"{keyword} {tag} is not a valid DICOM UID (digits and dots, at most 64 "
            "characters)")
    return value


def _started(dataset: Dataset) -> datetime | None:
    """StudyDate + StudyTime as an aware datetime (TimezoneOffsetFromUTC, else UTC)."""
    day = _text(dataset, "StudyDate", 8) or _text(dataset, "SeriesDate", 8)
    if not day or not re.fullmatch(r"\d{8}", day):
        return None
    clock = _text(dataset, "StudyTime", 16) or _text(dataset, "SeriesTime", 16) or ""
    digits = re.match(r"(\d{2})(\d{2})?(\d{2})?", clock.replace(":", ""))
    hour, minute, second = (int(g or 0) for g in digits.groups()) if digits else (0, 0, 0)
    zone = UTC
    offset = _text(dataset, "TimezoneOffsetFromUTC", 5)
    if offset and re.fullmatch(r"[+-]\d{4}", offset):
        sign = -1 if offset[0] == "-" else 1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5])))
    try:
        return datetime(int(day[:4]), int(day[4:6]), int(day[6:8]), hour, minute, second,
                        tzinfo=zone)
    except ValueError:
        return None


def _metadata(dataset: Dataset) -> DicomMetadata:
    transfer_syntax = str(dataset.file_meta.get("TransferSyntaxUID") or "")
    modality = _text(dataset, "Modality", 16)
    if modality is not None and not _CODE_STRING.match(modality.upper()):
        modality = None
    frames = _int(dataset, "NumberOfFrames") or 1
    return DicomMetadata(
        study_uid=_uid(dataset, "StudyInstanceUID", "(0020,000D)"),
        series_uid=_uid(dataset, "SeriesInstanceUID", "(0020,000E)"),
        instance_uid=_uid(dataset, "SOPInstanceUID", "(0008,0018)"),
        sop_class_uid=_text(dataset, "SOPClassUID", 64),
        modality=modality.upper() if modality else None,
        body_part=_text(dataset, "BodyPartExamined", 64),
        series_number=_int(dataset, "SeriesNumber"),
        instance_number=_int(dataset, "InstanceNumber"),
        started=_started(dataset),
        study_description=_text(dataset, "StudyDescription", 500),
        series_description=_text(dataset, "SeriesDescription", 500),
        patient_id=_text(dataset, "PatientID", 64),
        transfer_syntax=transfer_syntax,
        width=_int(dataset, "Columns") or 0,
        height=_int(dataset, "Rows") or 0,
        frames=max(frames, 1),
        photometric=(_text(dataset, "PhotometricInterpretation", 16) or "").upper(),
    )


def _has_pixels(dataset: Dataset) -> bool:
    return any(k in dataset for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def _check_decodable(dataset: Dataset, metadata: DicomMetadata, max_pixels: int) -> None:
    if metadata.transfer_syntax not in SUPPORTED_TRANSFER_SYNTAXES:
        name = UID(metadata.transfer_syntax).name if metadata.transfer_syntax else "(none)"
        accepted = "; ".join(f"{uid} ({label})"
                             for uid, label in SUPPORTED_TRANSFER_SYNTAXES.items())
        raise DicomNotDecodableError(
            f"transfer syntax {metadata.transfer_syntax or '(missing)'} ({name}) in "
            f"(0002,0010) is not supported; send one of: {accepted}")
    check_dimensions(metadata.width, metadata.height, max_pixels)
    _check_pixel_memory(dataset, metadata, max_pixels)


def _check_pixel_memory(dataset: Dataset, metadata: DicomMetadata, max_pixels: int) -> None:
    """Refuse pixel data whose declared size (all frames) exceeds what one image may take.

    Raises:
        ImageTooLargeError: rows x columns x frames x samples x bytes per sample is above
            `max_decoded_bytes(max_pixels)` (400).
    """
    samples = _int(dataset, "SamplesPerPixel") or 1
    bits = _int(dataset, "BitsAllocated") or 8
    if not 1 <= samples <= 4 or not 1 <= bits <= 64:
        raise CorruptDicomError(
            f"the DICOM header declares {samples} samples per pixel (0028,0002) and {bits} bits "
            "allocated (0028,0100); expected 1 or 3 samples of 1 to 64 bits")
    declared = metadata.width * metadata.height * metadata.frames * samples * -(-bits // 8)
    limit = max_decoded_bytes(max_pixels)
    if declared > limit:
        raise ImageTooLargeError(
            f"the DICOM pixel data declares {metadata.frames} frame(s) of {metadata.width}x"
            f"{metadata.height} pixels, {samples} sample(s) of {bits} bits (0028,0008 / 0011 / "
            f"0010 / 0002 / 0100): {declared:,} bytes decoded; the limit is {limit:,} bytes. "
            "Send a single frame or a downscaled copy.")


def read_dicom(data: bytes, *, max_pixels: int) -> DicomImage:
    """Validate a DICOM image completely and render its (middle) frame as 8-bit RGB.

    Grayscale: Modality LUT (rescale slope/intercept or a LUT), then VOI LUT or window
    centre/width, scaled to 0..255, inverted for MONOCHROME1. Colour: RGB as decoded (pydicom
    turns YBR into RGB), palette colour through its LUT.

    Raises:
        UnsupportedMediaError: not DICOM; DicomNotDecodableError: transfer syntax without a
            decoder (415). NoPixelDataError: not an image (422). CorruptDicomError: truncated
            or undecodable (400). ImageTooLargeError: dimensions or pixel memory above the
            limits (400). InflatedTooLargeError: a deflate bomb (413). NestedTooDeepError:
            sequences nested too deep (422).
    """
    dataset, outline = _read(data, max_pixels=max_pixels)
    if not outline.complete:
        # pydicom stops quietly at the end of the bytes; the raw walk knows it ended inside
        # an element or an open sequence.
        raise CorruptDicomError("the DICOM file is truncated: its bytes end inside an element "
                                "(before the end of its data set); send the complete file")
    if not _has_pixels(dataset):
        raise NoPixelDataError(
            "the DICOM file has no Pixel Data (7FE0,0010): it is not an image (SOP Class "
            f"{_text(dataset, 'SOPClassUID', 64) or 'unknown'}); send an image such as CR, DX, "
            "CT or MR")
    metadata = _metadata(dataset)
    _check_decodable(dataset, metadata, max_pixels)
    index = metadata.frames // 2
    _check_frame_size(dataset, metadata, index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from pydicom.pixels import pixel_array

            pixels = pixel_array(dataset, index=index if metadata.frames > 1 else None)
            rgb = _render(pixels, dataset, metadata)
    except (ValueError, RuntimeError, EOFError, OSError, KeyError, AttributeError,
            TypeError, IndexError, NotImplementedError) as err:
        log.info("dicom pixel data not decodable", extra={"error_type": type(err).__name__})
        raise CorruptDicomError(
            "the DICOM pixel data is truncated or corrupt and cannot be decoded "
            f"(transfer syntax {metadata.transfer_syntax})") from err
    return DicomImage(metadata=metadata, rgb=rgb, frame_index=index)


def _check_frame_size(dataset: Dataset, metadata: DicomMetadata, index: int) -> None:
    """Compare a compressed frame's own dimensions with Rows and Columns before decoding it.

    JPEG and JPEG 2000 decoders allocate what the codestream declares, not what the DICOM
    header says: a frame claiming 40,000 x 40,000 inside a 64 x 64 image would be decoded
    in full before pydicom notices the mismatch.

    Raises:
        CorruptDicomError: the frame cannot be found, or its size differs from the header's.
    """
    if not UID(metadata.transfer_syntax).is_encapsulated:
        return
    try:
        frame = get_frame(dataset.PixelData, index, number_of_frames=metadata.frames)
        size = _codestream_size(frame)
    except (ValueError, KeyError, IndexError, InvalidInputError) as err:
        raise CorruptDicomError(
            f"frame {index + 1} of the encapsulated Pixel Data (7FE0,0010) is missing or its "
            "header is cut short; the file is truncated or corrupt") from err
    if size is not None and size != (metadata.width, metadata.height):
        raise CorruptDicomError(
            f"frame {index + 1} is encoded as {size[0]}x{size[1]} pixels but the header says "
            f"{metadata.width}x{metadata.height} (Columns x Rows, 0028,0011 / 0028,0010); the "
            "file is corrupt")


def _codestream_size(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG frame header or a JPEG 2000 SIZ marker; None for other
    encodings (RLE frames carry no size: their decoder allocates from Rows and Columns)."""
    if frame.startswith(b"\xff\xd8"):
        header = read_header(frame, "jpeg")
        return header.width, header.height
    start = frame.find(_J2K_SIZ, 0, 1024)  # a bare codestream, or one in a JP2 box
    if start < 0:
        return None
    width, height, left, top = struct.unpack_from(">IIII", frame, start + 8)
    return width - left, height - top


def _to_uint8(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = float(np.min(values)), float(np.max(values))
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip((values - low) * (255.0 / (high - low)) + 0.5, 0, 255).astype(np.uint8)


def _render(pixels: np.ndarray, dataset: Dataset, metadata: DicomMetadata) -> np.ndarray:
    if pixels.ndim == 3 and metadata.frames > 1 and pixels.shape[-1] not in (3, 4):
        pixels = pixels[len(pixels) // 2]  # a decoder that ignored `index`
    photometric = metadata.photometric
    if photometric == "PALETTE COLOR":
        return _to_uint8(apply_color_lut(pixels, dataset))
    if pixels.ndim == 3:  # RGB (pydicom converted YBR_* to RGB while decoding)
        if pixels.dtype == np.uint8:
            return np.ascontiguousarray(pixels[..., :3])
        return _to_uint8(pixels[..., :3])
    values: Any = apply_modality_lut(pixels, dataset)
    values = apply_voi_lut(values, dataset)
    gray = _to_uint8(values)
    if photometric == "MONOCHROME1":  # 0 is white in MONOCHROME1
        gray = 255 - gray
    return np.stack([gray, gray, gray], axis=-1)


def strip_identifying(data: bytes, *, max_pixels: int) -> bytes:
    """A copy of the file without the patient's and staff's direct identifiers.

    The PatientID is kept (the Patient match is recorded by it) and so are the UIDs; private
    elements are removed, since their content is unknown.
    """
    dataset, _ = _read(data, max_pixels=max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for keyword in IDENTIFYING_KEYWORDS:
            if keyword in dataset:
                delattr(dataset, keyword)
        dataset.remove_private_tags()
        dataset.PatientIdentityRemoved = "NO"  # UIDs and PatientID remain: not anonymous
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- DICOMweb and DIMSE: header, DICOM JSON, transcoding, rendering -----------------------

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
RENDERED_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG"}
# Value representations whose values are bulk data: left out of metadata (PS3.18 F.2.6).
_BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def describe(data: bytes, *, max_pixels: int) -> DicomMetadata:
    """The header of a DICOM Part 10 file, without decoding its pixels.

    Used to decide whether a received instance is wanted (and already stored) before the
    full check that `read_dicom` does.

    Raises:
        UnsupportedMediaError: not DICOM. CorruptDicomError: unreadable. UnprocessableContent-
            Error: a study, series or instance UID is missing or malformed.
    """
    dataset, _ = _read(data, max_pixels=max_pixels)
    return _metadata(dataset)


def read_dataset(data: bytes) -> Dataset:
    """A stored (already validated) DICOM file as a pydicom Dataset."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))


def to_dicom_json(dataset: Dataset) -> dict[str, Any]:
    """The data set as DICOM JSON (PS3.18 F.2) without bulk data (pixels, overlays...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = Dataset()
        for element in dataset:
            if element.VR not in _BULK_VRS and element.tag.group != 0x0002:
                kept.add(element)
        return kept.to_json_dict(bulk_data_threshold=1 << 30)


def in_transfer_syntax(data: bytes, transfer_syntax: str | None) -> bytes:
    """The stored file in the transfer syntax a client asked for.

    None asks for Explicit VR Little Endian, the DICOMweb default (PS3.18 8.7.3.5.2); "*"
    and the stored syntax return the file unchanged; a compressed file is decompressed.

    Raises:
        DicomNotDecodableError: any other syntax (we do not compress on the fly).
    """
    dataset = read_dataset(data)
    stored = str(dataset.file_meta.TransferSyntaxUID)
    wanted = EXPLICIT_VR_LITTLE_ENDIAN if transfer_syntax is None else transfer_syntax
    if wanted in ("*", stored):
        return data
    if wanted != EXPLICIT_VR_LITTLE_ENDIAN:
        raise DicomNotDecodableError(
            f"transfer syntax {wanted} was asked for; this instance is available as {stored} "
            f"or {EXPLICIT_VR_LITTLE_ENDIAN} (Explicit VR Little Endian); ask for one of them "
            "or for transfer-syntax=*")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Same pixels, same instance (pydicom would mint a new SOP Instance UID by default).
        dataset.decompress(generate_instance_uid=False)
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def render(data: bytes, media_type: str, *, max_pixels: int) -> bytes:
    """The instance's (middle) frame as a JPEG or PNG, rendered as the classifier sees it."""
    from PIL import Image

    rgb = read_dicom(data, max_pixels=max_pixels).rgb
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=RENDERED_TYPES[media_type])
    return buffer.getvalue()


# Why an instance was not stored, as STOW-RS FailureReason (PS3.18 Table 10.5.3-2) and C-STORE
# status (PS3.4 B.2.3): the first class in the refusal's MRO that is listed here decides.
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_MISMATCH = 0xA900  # "data set does not match": another patient or study
CANNOT_UNDERSTAND = 0xC000
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122
PROCESSING_FAILURE = 0x0110
_FAILURE_REASONS: dict[type[Exception], int] = {
    PayloadTooLargeError: OUT_OF_RESOURCES,
    OSError: OUT_OF_RESOURCES,  # the blob store could not write
    DicomNotDecodableError: TRANSFER_SYNTAX_NOT_SUPPORTED,
    ConflictError: IDENTIFIER_MISMATCH,
    CsssError: CANNOT_UNDERSTAND,
}


def failure_reason(error: Exception) -> int:
    """The DICOM failure code for a refused instance (0x0110 for anything unforeseen)."""
    for kind in type(error).__mro__:
        if kind in _FAILURE_REASONS:
            return _FAILURE_REASONS[kind]
    return PROCESSING_FAILURE
