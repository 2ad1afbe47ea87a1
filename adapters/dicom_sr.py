"""A released AI result as DICOM (IHE AI Results): a Comprehensive SR and a Secondary Capture.

`build` turns the plain values of one report version into two instances in the scan's own
study, each in a new series: a TID 1500 Measurement Report (highdicom) whose observation
context names the verifying doctor (person observer) and the model (device observer), with
two measurement groups, each with its finding as the group's "Finding" (121071) — the AI
proposal (TID 4019 algorithm identification, the per-class probabilities in %) and the
doctor's verified finding — and, when there is one,
the Grad-CAM overlay as a Secondary Capture image. Findings are coded in SNOMED CT where a
concept exists (`adapters.fhir.common.STANDARD_FINDINGS`), else in our own scheme `99CSSS`.

`check` is the dciodvfy-style validation of what `build` makes: highdicom's reader parses the
SR content tree back, pydicom's dictionary checks each element's VR and value, and the
required attributes of each IOD are present.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

import highdicom as hd
import numpy as np
from highdicom._standard_utils import (
    construct_module_tree,
    get_iod_module_map,
    get_sop_class_iod_map,
)
from highdicom.sr import (
    AlgorithmIdentification,
    CodedConcept,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    SourceImageForMeasurementGroup,
    TrackingIdentifier,
)
from PIL import Image
from pydicom import config, dcmread
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage, SecondaryCaptureImageStorage, generate_uid
from pydicom.valuerep import DA, DT, TM, PersonName, validate_value

from adapters.fhir.common import SNOMED, STANDARD_FINDINGS, finding_key
from csss_fhir.errors import UnprocessableContentError

OWN_SCHEME = "99CSSS"  # PS3.16 8.2: a private coding scheme designator starts with "99"
MANUFACTURER = "CSSS-FHIR"
SR_SERIES_NUMBER = 901
SC_SERIES_NUMBER = 902
UTF_8 = "ISO_IR 192"  # Specific Character Set (0008,0005)
# CodeMeaning is LO (64 characters): SNOMED CT's synonym where the FHIR display is longer.
_SHORT_MEANINGS = {"882784691000119100": "Pneumonia caused by SARS-CoV-2"}
CHEST_XRAY = CodedConcept("36643-5", "LN", "XR Chest 2 Views")  # LOINC procedure reported


@dataclass(frozen=True)
class ResultValues:
    """Everything the DICOM result of one report version shows (no database rows)."""

    study_uid: str
    series_uid: str  # of the scan
    instance_uid: str  # of the scan
    sop_class_uid: str | None  # of the scan; None for a JPEG/PNG upload (Secondary Capture)
    modality: str
    study_started: datetime
    patient_name: str  # DICOM PN: Family^Given
    patient_id: str
    birth_date: date | None
    sex: str | None  # M, F, O or None
    model_name: str
    model_version: str
    ai_top_class: str
    ai_label: str
    probabilities: dict[str, float]  # class -> 0..1
    doctor_name: str
    verified_at: datetime
    finding: str  # the doctor's verified (or the amended) finding
    report_version: int
    gradcam_png: bytes | None


@dataclass(frozen=True)
class DerivedInstance:
    kind: str  # "sr" | "sc"
    data: bytes
    series_uid: str
    instance_uid: str
    sop_class_uid: str
    modality: str
    series_number: int
    instance_number: int
    height: int | None
    width: int | None


def finding_concept(label: str) -> CodedConcept:
    """The coded finding: SNOMED CT where one exists, else our own scheme."""
    standard = STANDARD_FINDINGS.get(finding_key(label))
    if standard is not None and standard[0] == SNOMED:
        return CodedConcept(standard[1], "SCT", _SHORT_MEANINGS.get(standard[1], standard[2]))
    return CodedConcept(_own_code(label), OWN_SCHEME, label.replace("_", " "))


def _own_code(label: str) -> str:
    code = finding_key(label).upper().replace(" ", "-")
    return code[:16]


def person_name(display: str) -> str:
    """A display name ("Anna Maria Rossi") as DICOM PN ("Rossi^Anna Maria")."""
    *given, family = display.split() or [""]
    return str(PersonName.from_named_components(family_name=family,
                                                given_name=" ".join(given)))


def _reference(values: ResultValues) -> Dataset:
    """The scan as the evidence both instances refer to, with the registered patient."""
    ref = Dataset()
    ref.SOPClassUID = values.sop_class_uid or SecondaryCaptureImageStorage
    ref.SOPInstanceUID = values.instance_uid
    ref.StudyInstanceUID = values.study_uid
    ref.SeriesInstanceUID = values.series_uid
    ref.Modality = values.modality
    ref.PatientName = values.patient_name
    ref.PatientID = values.patient_id
    ref.PatientBirthDate = values.birth_date.strftime("%Y%m%d") if values.birth_date else ""
    ref.PatientSex = values.sex or ""
    ref.StudyDate = values.study_started.strftime("%Y%m%d")
    ref.StudyTime = values.study_started.strftime("%H%M%S")
    ref.AccessionNumber = ""
    ref.ReferringPhysicianName = ""
    ref.StudyID = ""
    return ref


def build(values: ResultValues) -> list[DerivedInstance]:
    """The SR and (with a Grad-CAM) the Secondary Capture of one report version.

    Raises:
        UnprocessableContentError: the values cannot make a valid instance (highdicom says
            which attribute).
    """
    ref = _reference(values)
    try:
        instances = [_structured_report(values, ref)]
        if values.gradcam_png is not None:
            instances.append(_secondary_capture(values, ref))
    except (ValueError, TypeError) as err:
        raise UnprocessableContentError(
            f"the AI result of report version {values.report_version} cannot be written as "
            f"DICOM: {err}") from err
    return instances


def _structured_report(values: ResultValues, ref: Dataset) -> DerivedInstance:
    algorithm = AlgorithmIdentification(name=values.model_name, version=values.model_version)
    context = ObservationContext(
        observer_person_context=ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=PersonObserverIdentifyingAttributes(
                name=person_name(values.doctor_name))),
        observer_device_context=ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                uid=generate_uid(), name=values.model_name, manufacturer_name=MANUFACTURER,
                model_name=values.model_name)),
    )
    source = [SourceImageForMeasurementGroup(ref.SOPClassUID, ref.SOPInstanceUID)]
    classes = sorted(values.probabilities)
    ai_group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(), identifier="AI proposal"),
        algorithm_id=algorithm,
        finding_type=finding_concept(values.ai_label),
        measurements=[Measurement(
            name=CodedConcept(f"P-{number:02d}", OWN_SCHEME,
                              f"Probability of {name.replace('_', ' ')}"),
            value=round(values.probabilities[name] * 100.0, 4), unit=codes.UCUM.Percent,
            algorithm_id=algorithm) for number, name in enumerate(classes, start=1)],
        source_images=source,
    )
    doctor_group = MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=generate_uid(),
                                               identifier="Verified finding"),
        finding_type=finding_concept(values.finding),
        source_images=source,
    )
    report = MeasurementReport(observation_context=context, procedure_reported=CHEST_XRAY,
                               imaging_measurements=[ai_group, doctor_group])
    series_uid, instance_uid = generate_uid(), generate_uid()
    sr = Comprehensive3DSR(
        evidence=[ref], content=report[0], series_instance_uid=series_uid,
        series_number=SR_SERIES_NUMBER, sop_instance_uid=instance_uid,
        instance_number=values.report_version, manufacturer=MANUFACTURER,
        is_complete=True, is_final=True, is_verified=True,
        verifying_observer_name=person_name(values.doctor_name),
        verifying_organization=MANUFACTURER,
        series_description="AI result (verified)",
    )
    sr.ContentDate = values.verified_at.strftime("%Y%m%d")
    sr.ContentTime = values.verified_at.strftime("%H%M%S")
    sr.SpecificCharacterSet = UTF_8  # names may be accented; the default is ASCII only
    return DerivedInstance("sr", _encode(sr), series_uid, instance_uid, sr.SOPClassUID, "SR",
                           SR_SERIES_NUMBER, values.report_version, None, None)


def _secondary_capture(values: ResultValues, ref: Dataset) -> DerivedInstance:
    with Image.open(io.BytesIO(values.gradcam_png)) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    series_uid, instance_uid = generate_uid(), generate_uid()
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ref, pixel_array=pixels, photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=series_uid,
        series_number=SC_SERIES_NUMBER, sop_instance_uid=instance_uid,
        instance_number=values.report_version, manufacturer=MANUFACTURER,
        patient_orientation=("L", "F"),
        transfer_syntax_uid="1.2.840.10008.1.2.1",
    )
    sc.SeriesDescription = "AI Grad-CAM overlay (not for diagnosis)"
    sc.ImageComments = (f"Grad-CAM of {values.ai_top_class} by {values.model_name} "
                        f"{values.model_version}")
    sc.ManufacturerModelName = values.model_name[:64]
    sc.SoftwareVersions = values.model_version[:64]
    sc.BurnedInAnnotation = "NO"
    sc.SpecificCharacterSet = UTF_8
    return DerivedInstance("sc", _encode(sc), series_uid, instance_uid, sc.SOPClassUID, "OT",
                           SC_SERIES_NUMBER, values.report_version, int(sc.Rows),
                           int(sc.Columns))


def _encode(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- validation ---------------------------------------------------------------------------

# dciodvfy itself is not installable here, and `dicom-validator` (PyPI) downloads the
# standard's XML before it runs. highdicom ships PS3.3's IOD and module tables (generated
# from the standard) for its own checks; they sit in a private module (imported above),
# so an upgrade that moves them fails tests/unit/adapters/test_dicom_sr.py, not a release.

# Type 1C/2C attributes whose condition always holds for what `build` writes: checked as
# type 1 (the condition, PS3.3, in the comment).
_CONDITIONAL_TYPE_1 = {
    "sr-document-general": ("VerifyingObserverSequence",  # VerificationFlag is VERIFIED
                            "CurrentRequestedProcedureEvidenceSequence"),  # the scan was used
    "sr-document-content": ("ConceptNameCodeSequence",  # the root CONTAINER's title
                            "ContentTemplateSequence",  # the root follows TID 1500
                            "ContentSequence"),  # the root has children
    "image-pixel": ("PixelData",  # no Pixel Data Provider URL
                    "PlanarConfiguration"),  # SamplesPerPixel > 1 (RGB)
}
# The SR Document Content table merges the content item macros of every value type, each
# required only for its own type: the walk would demand all of them of every item. So of
# that module only the document root's attributes are checked here; highdicom's SR reader
# checks the content tree (`_check_content`).
_ROOT_ONLY = {"sr-document-content": ("ValueType", "ContinuityOfContent")}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
             "UC", "UI", "UR", "UT"}
_TEMPORAL = {"DA": DA, "DT": DT, "TM": TM}


def check(data: bytes) -> list[str]:
    """What is wrong with one of our instances; an empty list when it passes.

    dciodvfy-style: every mandatory module of the instance's IOD (PS3.3, from highdicom's
    tables) with its type 1 attributes present and not empty and its type 2 attributes
    present, in nested sequences too; every value valid for its VR (pydicom, raising mode,
    and a read-write-read round trip that must change nothing); dates and times that
    exist; SpecificCharacterSet where text is not ASCII; the file meta consistent; for the
    SR, its content tree read back by highdicom.
    """
    dataset = dcmread(io.BytesIO(data))
    iod = get_sop_class_iod_map().get(dataset.SOPClassUID)
    if iod is None or dataset.SOPClassUID not in (Comprehensive3DSRStorage,
                                                  SecondaryCaptureImageStorage):
        return [f"SOP Class {dataset.SOPClassUID} is not one this service writes"]
    problems: list[str] = []
    if dataset.file_meta.MediaStorageSOPClassUID != dataset.SOPClassUID or \
            dataset.file_meta.MediaStorageSOPInstanceUID != dataset.SOPInstanceUID:
        problems.append("file meta SOP class/instance differ from the dataset's")
    for module in get_iod_module_map()[iod]:
        if module["usage"] == "M":
            problems += _check_module(dataset, module["key"])
    problems += _check_values(dataset)
    problems += _round_trip(data)
    if dataset.SOPClassUID == Comprehensive3DSRStorage:
        problems += _check_content(dataset)
    return problems


def _check_module(dataset: Dataset, module: str) -> list[str]:
    """Missing type 1/2 and empty type 1 attributes of one module, with their paths."""
    problems: list[str] = []
    conditional = _CONDITIONAL_TYPE_1.get(module, ())

    def walk(item: Dataset, tree: dict, path: str) -> None:
        for keyword, node in tree["attributes"].items():
            kind = node["type"].value
            if path == "" and keyword in conditional:
                kind = "1"
            if kind in ("1", "2") and keyword not in item:
                problems.append(f"{path}{keyword} missing (type {kind}, {module} module)")
            elif kind == "1" and _empty(item[keyword].value):
                problems.append(f"{path}{keyword} empty (type 1: a value is required)")
            if keyword in item and "attributes" in node and item[keyword].VR == "SQ":
                for number, child in enumerate(item[keyword].value, 1):
                    walk(child, node, f"{path}{keyword}[{number}].")

    tree = construct_module_tree(module)
    if module in _ROOT_ONLY:
        keep = set(_ROOT_ONLY[module]) | set(conditional)
        tree = {"attributes": {k: {"type": v["type"]} for k, v in tree["attributes"].items()
                               if k in keep}}
    walk(dataset, tree, "")
    return problems


def _empty(value: object) -> bool:
    """No value: None, an empty string, bytes or sequence, or an empty person name."""
    if value is None:
        return True
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        return str(value) == "" if not isinstance(value, bytes) else value == b""
    return len(value) == 0


def _check_values(dataset: Dataset) -> list[str]:
    """Every value against its VR (pydicom's rules, raising: UIDs without leading zeros,
    PS3.5 9.1), dates and times that exist, and a character set for non-ASCII text."""
    problems: list[str] = []
    for element in dataset.iterall():
        if element.VR in ("SQ", "OB", "OW", "UN") or element.value is None:
            continue
        name = element.keyword or str(element.tag)
        if element.VR in _TEXT_VRS and not str(element.value).isascii() and \
                "SpecificCharacterSet" not in dataset:
            problems.append(f"{name} holds characters outside ASCII but SpecificCharacterSet "
                            "is missing (type 1C, sop-common module)")
        for value in element.value if element.VM > 1 else [element.value]:
            text = str(value) if element.VR in _TEXT_VRS else value
            try:
                validate_value(element.VR, text, config.RAISE)
                if element.VR in _TEMPORAL and text:
                    _TEMPORAL[element.VR](text, validation_mode=config.RAISE)
            except ValueError as err:
                problems.append(f"{name}: {err}")
    return problems


def _round_trip(data: bytes) -> list[str]:
    """Read with pydicom's reading and writing validation raising, write, read again: any
    value pydicom refuses, or any change, is a problem. The modes are pydicom's globals,
    set for the call: a test-time check, not one for a thread of a running server."""
    saved = (config.settings.reading_validation_mode, config.settings.writing_validation_mode)
    config.settings.reading_validation_mode = config.RAISE
    config.settings.writing_validation_mode = config.RAISE
    try:
        first = dcmread(io.BytesIO(data))
        for element in first.iterall():
            element.value  # noqa: B018 (converting the raw value validates it)
        again = dcmread(io.BytesIO(_encode(first)))
    except (ValueError, TypeError) as err:
        return [f"pydicom's raising round trip refuses it: {err}"]
    finally:
        config.settings.reading_validation_mode, config.settings.writing_validation_mode = saved
    return [] if again == first else ["a pydicom write and read changes the dataset"]


def _check_content(dataset: Dataset) -> list[str]:
    try:
        report = hd.sr.srread(io.BytesIO(_encode(dataset))).content
        observers = report.get_observer_contexts()
        groups = report.get_image_measurement_groups()
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        return [f"the SR content tree does not read back as TID 1500: {err}"]
    problems = []
    if {str(o.observer_type.value) for o in observers} != {"121006", "121007"}:
        problems.append("the SR's observation context lacks the person or device observer")
    if len(groups) != 2:
        problems.append(f"the SR has {len(groups)} measurement groups; expected 2")
    return problems
