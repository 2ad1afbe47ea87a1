"""adapters.dicom_sr: the released AI result as a TID 1500 SR and a Grad-CAM SC, valid by
highdicom's reader and the dciodvfy-style `check`."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from datetime import date, datetime

import highdicom as hd
import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid

from adapters import dicom_sr
from tests.factories import xray_png


def result_values(**changes) -> dicom_sr.ResultValues:
    values = dicom_sr.ResultValues(
        study_uid=generate_uid(), series_uid=generate_uid(), instance_uid=generate_uid(),
        sop_class_uid=None, modality="DX", study_started=datetime(2026, 1, 2, 9, 30),
        patient_name="Rossi^Anna Maria", patient_id="MRN-7", birth_date=date(1980, 5, 6),
        sex="F", model_name="csss-cxr", model_version="2.1.0", ai_top_class="COVID",
        ai_label="COVID", probabilities={"COVID": 0.81, "Normal": 0.07,
                                         "Viral_Pneumonia": 0.12},
        doctor_name="Grace Hopper", verified_at=datetime(2026, 1, 2, 10, 5), finding="Normal",
        report_version=1, gradcam_png=xray_png(96))
    return replace(values, **changes)


def texts(items, code: str) -> set[str]:
    """The TEXT values of content items named `code`, anywhere below `items`."""
    found = set()
    for item in items:
        if item.ConceptNameCodeSequence[0].CodeValue == code and "TextValue" in item:
            found.add(item.TextValue)
        found |= texts(item.get("ContentSequence", []), code)
    return found


def test_the_sr_and_sc_are_filed_in_the_original_study_and_pass_the_checks():
    values = result_values()
    sr, sc = dicom_sr.build(values)
    assert (sr.kind, sr.modality, sc.kind, sc.modality) == ("sr", "SR", "sc", "OT")
    for instance in (sr, sc):
        dataset = dcmread(io.BytesIO(instance.data))
        assert dataset.StudyInstanceUID == values.study_uid
        assert dataset.SeriesInstanceUID not in (values.series_uid, sr.series_uid
                                                 if instance is sc else sc.series_uid)
        assert (dataset.PatientID, str(dataset.PatientName)) == ("MRN-7", "Rossi^Anna Maria")
        assert dicom_sr.check(instance.data) == []
    assert dcmread(io.BytesIO(sc.data)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert (sc.height, sc.width) == (96, 96) and sr.height is None


def test_the_sr_reads_back_with_finding_probabilities_model_and_doctor():
    sr = dcmread(io.BytesIO(dicom_sr.build(result_values())[0].data))
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    assert sr.VerificationFlag == "VERIFIED" and sr.CompletionFlag == "COMPLETE"
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Hopper^Grace"
    report = hd.sr.srread(io.BytesIO(dicom_sr.build(result_values())[0].data)).content
    [person] = report.get_observer_contexts(observer_type=hd.sr.CodedConcept(
        "121006", "DCM", "Person"))
    assert str(person.observer_identifying_attributes[0].value) == "Hopper^Grace"
    ai, doctor = report.get_image_measurement_groups()
    assert ai.tracking_identifier == "AI proposal"
    # TID 4019 algorithm identification: Algorithm Name (111001), Version (111003)
    assert texts(ai, "111001") == {"csss-cxr"} and texts(ai, "111003") == {"2.1.0"}
    # SNOMED CT's long code (LongCodeValue) with a meaning that fits LO (64 characters)
    assert (ai.finding_type.value, ai.finding_type.scheme_designator,
            ai.finding_type.meaning) == ("882784691000119100", "SCT",
                                         "Pneumonia caused by SARS-CoV-2")
    probabilities = {m.name.meaning: m.value for m in ai.get_measurements()}
    assert probabilities == {"Probability of COVID": 81.0, "Probability of Normal": 7.0,
                             "Probability of Viral Pneumonia": 12.0}
    assert all(m.unit.value == "%" for m in ai.get_measurements())
    assert doctor.tracking_identifier == "Verified finding"
    assert (doctor.finding_type.value, doctor.finding_type.meaning) == ("17621005", "Normal")
    assert texts(doctor, "111001") == set()  # the doctor's group names no algorithm


def test_a_class_without_a_standard_code_uses_our_own_scheme():
    concept = dicom_sr.finding_concept("Lung_Opacity")
    assert (concept.value, concept.scheme_designator, concept.meaning) == (
        "LUNG-OPACITY", "99CSSS", "Lung Opacity")


def test_without_a_gradcam_only_the_sr_is_built():
    assert [i.kind for i in dicom_sr.build(result_values(gradcam_png=None))] == ["sr"]


def test_check_finds_a_missing_attribute_and_a_bad_value():
    sr = dcmread(io.BytesIO(dicom_sr.build(result_values())[0].data))
    del sr.ContentDate
    sr.Modality = ""
    sr.StudyDate = "2026-01-02"  # DA is YYYYMMDD
    buffer = io.BytesIO()
    sr.save_as(buffer)
    problems = dicom_sr.check(buffer.getvalue())
    assert "ContentDate missing (type 1, sr-document-general module)" in problems
    assert "Modality empty (type 1: a value is required)" in problems
    assert any(p.startswith("StudyDate:") for p in problems)


def encoded(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    return buffer.getvalue()


def test_check_walks_every_mandatory_module_of_the_sr_iod():
    sr = dcmread(io.BytesIO(dicom_sr.build(result_values())[0].data))
    del sr.AccessionNumber  # type 2: present, even when empty
    del sr.VerifyingObserverSequence[0].VerifyingObserverName  # type 1, nested
    sr.ContentTemplateSequence = []  # type 1C that applies: TID 1500
    problems = dicom_sr.check(encoded(sr))
    assert "AccessionNumber missing (type 2, general-study module)" in problems
    assert ("VerifyingObserverSequence[1].VerifyingObserverName missing (type 1, "
            "sr-document-general module)") in problems
    assert "ContentTemplateSequence empty (type 1: a value is required)" in problems


def test_check_walks_every_mandatory_module_of_the_sc_iod():
    sc = dcmread(io.BytesIO(dicom_sr.build(result_values())[1].data))
    del sc.ConversionType, sc.PlanarConfiguration
    sc.Rows = None
    assert dicom_sr.check(encoded(sc)) == [
        "ConversionType missing (type 1, sc-equipment module)",
        "PlanarConfiguration missing (type 1, image-pixel module)",
        "Rows empty (type 1: a value is required)"]


def test_check_finds_impossible_dates_and_uids_with_leading_zeros():
    sr = dcmread(io.BytesIO(dicom_sr.build(result_values())[0].data))
    sr.ContentDate = "20260231"  # the right shape, no such day
    sr.SeriesInstanceUID = "1.2.03.4"
    problems = dicom_sr.check(encoded(sr))
    assert "ContentDate: day is out of range for month" in problems
    assert any(p.startswith("SeriesInstanceUID: ") for p in problems)
    assert any(p.startswith("pydicom's raising round trip refuses it") for p in problems)


def test_accented_names_are_written_as_utf_8_and_checked():
    sr, sc = dicom_sr.build(result_values(patient_name="Müller^Jörg", doctor_name="José Núñez"))
    for instance in (sr, sc):
        assert dicom_sr.check(instance.data) == []
        assert dcmread(io.BytesIO(instance.data)).SpecificCharacterSet == "ISO_IR 192"
        assert "Müller^Jörg".encode() in instance.data
    dataset = dcmread(io.BytesIO(sr.data))
    del dataset.SpecificCharacterSet
    assert ("PatientName holds characters outside ASCII but SpecificCharacterSet is missing "
            "(type 1C, sop-common module)") in dicom_sr.check(encoded(dataset))


def test_check_finds_an_sr_that_is_not_tid_1500():
    sr = dcmread(io.BytesIO(dicom_sr.build(result_values())[0].data))
    sr.ContentSequence = [item for item in sr.ContentSequence  # no observers
                          if item.RelationshipType != "HAS OBS CONTEXT"]
    buffer = io.BytesIO()
    sr.save_as(buffer)
    assert dicom_sr.check(buffer.getvalue()) == [
        "the SR's observation context lacks the person or device observer"]


@pytest.mark.parametrize("name, pn", [("Grace Hopper", "Hopper^Grace"),
                                      ("Anna Maria Rossi", "Rossi^Anna Maria"),
                                      ("Plato", "Plato")])
def test_display_names_become_person_names(name, pn):
    assert dicom_sr.person_name(name) == pn


def test_building_the_sr_and_sc_takes_milliseconds():
    values = result_values()
    dicom_sr.build(values)  # imports and code tables warm
    runs = 10
    started = time.perf_counter()
    for _ in range(runs):
        dicom_sr.build(values)
    per_release_ms = (time.perf_counter() - started) * 1000 / runs
    print(f"SR+SC build: {per_release_ms:.1f} ms per release")
    assert per_release_ms < 1000
