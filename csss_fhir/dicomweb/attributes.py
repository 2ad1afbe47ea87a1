"""QIDO-RS results: a scan's study, series or instance attributes as DICOM JSON.

The attributes PS3.18 Table 10.6.3-3 requires come from the database (the scan and its
Patient); `includefield` adds any other attribute from the stored instance's header, which is
read only then. A filed AI result (`DicomResult`) has the study attributes of its scan and
series and instance attributes of its own. The Patient's name, birth date and sex are those
registered in FHIR, the one record the hospital keeps (the file's own may have been stripped,
DICOM_STRIP_IDENTIFYING).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from adapters import dicom
from csss_fhir.errors import InvalidInputError
from csss_fhir.models import DicomResult, Scan

SEX = {"male": "M", "female": "F", "other": "O"}
Instance = Scan | DicomResult
HeaderOf = Callable[[Instance], Dataset]


def retrieve_url(root: str, scan: Instance, level: str) -> str:
    url = f"{root}/studies/{scan.study_uid}"
    if level in ("series", "instance"):
        url += f"/series/{scan.series_uid}"
    if level == "instance":
        url += f"/instances/{scan.instance_uid}"
    return url


def _study(scan: Scan, dataset: Dataset, derived: list[DicomResult]) -> None:
    patient = scan.patient
    started = scan.started or scan.created_at
    dataset.StudyInstanceUID = scan.study_uid
    dataset.StudyDate = started.strftime("%Y%m%d")
    dataset.StudyTime = started.strftime("%H%M%S")
    dataset.TimezoneOffsetFromUTC = "+0000"
    dataset.AccessionNumber = None
    dataset.ReferringPhysicianName = None
    dataset.StudyID = None
    own = [scan] if scan.source_format == "dicom" else []
    dataset.ModalitiesInStudy = sorted({i.modality for i in [*own, *derived]})
    dataset.PatientName = "^".join(p for p in (patient.family_name, patient.given_names))
    dataset.PatientID = patient.mrn or None
    dataset.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") \
        if patient.birth_date else None
    dataset.PatientSex = SEX.get(patient.gender or "", None)
    dataset.NumberOfStudyRelatedSeries = len({i.series_uid for i in [*own, *derived]})
    dataset.NumberOfStudyRelatedInstances = len(own) + len(derived)
    if scan.description:
        dataset.StudyDescription = scan.description


def _series(scan: Instance, dataset: Dataset) -> None:
    dataset.SeriesInstanceUID = scan.series_uid
    dataset.Modality = scan.modality
    dataset.SeriesNumber = scan.series_number
    dataset.NumberOfSeriesRelatedInstances = 1


def _instance(scan: Instance, dataset: Dataset) -> None:
    dataset.SOPClassUID = scan.sop_class_uid
    dataset.SOPInstanceUID = scan.instance_uid
    dataset.InstanceNumber = scan.instance_number
    if scan.height is not None:  # an SR has no pixels
        dataset.Rows = scan.height
        dataset.Columns = scan.width


def include_tags(names: tuple[str, ...]) -> tuple[int, ...] | None:
    """The tags `includefield` names (keywords or 8-digit tags); None for "all".

    Raises:
        InvalidInputError: a name that is neither a DICOM keyword nor a tag.
    """
    if "all" in names:
        return None
    tags = []
    for name in names:
        tag = tag_for_keyword(name)
        if tag is None and len(name) == 8:
            try:
                tag = int(Tag(name))
            except (ValueError, OverflowError):
                tag = None
        if tag is None:
            raise InvalidInputError(
                f"includefield={name!r} is neither a DICOM keyword (e.g. SeriesDescription) "
                "nor a tag (e.g. 0008103E), nor 'all'")
        tags.append(int(tag))
    return tuple(tags)


def to_json(scan: Instance, level: str, *, root: str, include: tuple[int, ...] | None,
            header_of: HeaderOf, derived: list[DicomResult] = ()) -> dict[str, Any]:
    """The scan or filed result at `level` (study, series, instance) as one DICOM JSON
    object; `derived`: the results filed in a study (its counts and modalities)."""
    dataset = Dataset()
    dataset.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names as registered
    _study(scan.scan if isinstance(scan, DicomResult) else scan, dataset, list(derived))
    if level in ("series", "instance"):
        _series(scan, dataset)
    if level == "instance":
        _instance(scan, dataset)
    dataset.RetrieveURL = retrieve_url(root, scan, level)
    wanted = include if include is None else [t for t in include if t not in dataset]
    if wanted is None or wanted:
        header = header_of(scan)
        for element in header:
            if (wanted is None or int(element.tag) in wanted) and element.tag not in dataset \
                    and element.tag.group != 0x0002 and keyword_for_tag(element.tag) != "":
                dataset.add(element)
    return dicom.to_dicom_json(dataset)
