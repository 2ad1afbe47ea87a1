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
from pydicom.uid import SecondaryCaptureImageStorage, generate_uid
from pydicom.valuerep import PersonName, validate_value

from adapters.fhir.common import SNOMED, STANDARD_FINDINGS, finding_key
from csss_fhir.errors import UnprocessableContentError

OWN_SCHEME = "99CSSS"  # PS3.16 8.2: a private coding scheme designator starts with "99"
MANUFACTURER = "CSSS-FHIR"
SR_SERIES_NUMBER = 901
SC_SERIES_NUMBER = 902
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
    return DerivedInstance("sc", _encode(sc), series_uid, instance_uid, sc.SOPClassUID, "OT",
                           SC_SERIES_NUMBER, values.report_version, int(sc.Rows),
                           int(sc.Columns))


def _encode(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# --- validation ---------------------------------------------------------------------------

# Type 1 and 2 attributes of the modules every one of our instances must carry (PS3.3
# A.35.3 Comprehensive 3D SR, A.8.1 SC Image): patient, study, series, equipment, SOP common.
_COMMON = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
           "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID", "AccessionNumber",
           "SeriesInstanceUID", "SeriesNumber", "Modality", "Manufacturer", "SOPClassUID",
           "SOPInstanceUID", "InstanceNumber")
# Type 1 (PS3.3): present and not empty.
_TYPE_1 = frozenset({"StudyInstanceUID", "SeriesInstanceUID", "Modality", "SOPClassUID",
                     "SOPInstanceUID", "ValueType", "ConceptNameCodeSequence",
                     "ContinuityOfContent", "CompletionFlag", "VerificationFlag",
                     "ContentDate", "ContentTime", "ConversionType", "SamplesPerPixel",
                     "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated",
                     "BitsStored", "HighBit", "PixelRepresentation", "PixelData"})
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
              "UC", "UI", "UR", "UT"}
_REQUIRED = {
    "1.2.840.10008.5.1.4.1.1.88.34": _COMMON + (  # Comprehensive 3D SR
        "ValueType", "ConceptNameCodeSequence", "ContinuityOfContent", "ContentSequence",
        "CompletionFlag", "VerificationFlag", "ContentDate", "ContentTime",
        "VerifyingObserverSequence", "CurrentRequestedProcedureEvidenceSequence",
        "ContentTemplateSequence", "ReferencedPerformedProcedureStepSequence",
        "PerformedProcedureCodeSequence"),
    SecondaryCaptureImageStorage: _COMMON + (
        "ConversionType", "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns",
        "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "PixelData",
        "PlanarConfiguration", "PatientOrientation"),
}


def check(data: bytes) -> list[str]:
    """What is wrong with one of our instances; an empty list when it passes.

    dciodvfy-style: the IOD's required attributes present (type 1 also not empty), every
    element's value valid for its VR (pydicom's validation, raising mode), the file meta
    consistent, and for the SR its content tree read back by highdicom.
    """
    problems: list[str] = []
    dataset = dcmread(io.BytesIO(data))
    required = _REQUIRED.get(dataset.SOPClassUID)
    if required is None:
        return [f"SOP Class {dataset.SOPClassUID} is not one this service writes"]
    if dataset.file_meta.MediaStorageSOPClassUID != dataset.SOPClassUID or \
            dataset.file_meta.MediaStorageSOPInstanceUID != dataset.SOPInstanceUID:
        problems.append("file meta SOP class/instance differ from the dataset's")
    for keyword in required:
        if keyword not in dataset:
            problems.append(f"{keyword} missing")
        elif keyword in _TYPE_1 and dataset[keyword].value in (None, "", b""):
            problems.append(f"{keyword} empty (type 1: a value is required)")
    for element in dataset.iterall():
        if element.VR in ("SQ", "OB", "OW", "UN") or element.value is None:
            continue
        values = element.value if element.VM > 1 else [element.value]
        for value in values:
            try:
                validate_value(element.VR, str(value) if element.VR in _TEXT_VRS else value,
                               config.RAISE)
            except ValueError as err:
                problems.append(f"{element.keyword or element.tag}: {err}")
    if dataset.SOPClassUID != SecondaryCaptureImageStorage:
        problems += _check_content(dataset)
    return problems


def _check_content(dataset: Dataset) -> list[str]:
    try:
        report = hd.sr.srread(io.BytesIO(_encode(dataset))).content
        observers = report.get_observer_contexts()
        groups = report.get_image_measurement_groups()
    except (ValueError, TypeError, AttributeError) as err:
        return [f"the SR content tree does not read back as TID 1500: {err}"]
    problems = []
    if {str(o.observer_type.value) for o in observers} != {"121006", "121007"}:
        problems.append("the SR's observation context lacks the person or device observer")
    if len(groups) != 2:
        problems.append(f"the SR has {len(groups)} measurement groups; expected 2")
    return problems
