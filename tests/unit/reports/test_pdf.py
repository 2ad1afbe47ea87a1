"""The report PDF, read back with pypdf: what a patient and a text extractor find in it."""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader

from csss_fhir.reports import fonts
from csss_fhir.reports.content import AI_NOTICE, Amendment, PrescriptionLine
from csss_fhir.reports.pdf import render_pdf
from csss_fhir.reports.sample import CHINESE_NAME, LATIN_NAME, TAMIL_NAME, sample_content
from csss_fhir.wording import route_words
from tests.factories import xray_png


def tamil_font_chain() -> fonts.FontChain:
    """The font chain, which must hold Noto Sans Tamil: fontpkg-noto-sans-tamil is a
    dependency (setup.cfg), so a missing font is a broken install, not a reason to skip."""
    chain = fonts.chain()
    assert chain.has("tamil"), (
        "no Tamil face in the report font chain; install the declared dependency "
        "fontpkg-noto-sans-tamil (pip install -e .)")
    return chain


def flat(text: str) -> str:
    return " ".join(text.split())


def page_texts(pdf: bytes) -> list[str]:
    return [flat(page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def actual_texts(pdf: bytes) -> list[str]:
    """The /ActualText of marked-content spans: what a viewer copies for shaped text."""
    found: list[str] = []

    def visit(operator, operands, cm, tm):
        if operator == b"BDC" and len(operands) == 2 and "/ActualText" in operands[1]:
            found.append(str(operands[1]["/ActualText"]))

    for page in PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_operand_before=visit)
    return found


def embedded_fonts(pdf: bytes) -> set[str]:
    names = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


@pytest.fixture(scope="module")
def two_pages() -> bytes:
    return render_pdf(sample_content(image=xray_png(128), gradcam=xray_png(64, seed=1)))


def test_the_ai_notice_is_on_every_page_word_for_word(two_pages):
    pages = page_texts(two_pages)
    assert len(pages) == 2
    for number, text in enumerate(pages, start=1):
        assert flat(AI_NOTICE) in text
        assert f"Page {number} of 2" in text


def test_accented_latin_and_chinese_names_extract_as_written(two_pages):
    if not fonts.chain().has("cjk"):
        pytest.skip("no CJK TrueType font here (Debian: fonts-droid-fallback)")
    text = " ".join(page_texts(two_pages))
    assert f"Dr. {LATIN_NAME}" in text
    assert CHINESE_NAME in text
    assert "Ana-María Gonçalves" in text


def test_a_tamil_name_is_shaped_in_an_embedded_tamil_font_and_copies_as_written(two_pages):
    tamil_font_chain()
    assert any("NotoSansTamil" in name for name in embedded_fonts(two_pages))
    # The header of each page draws the name with its ActualText.
    assert sum(TAMIL_NAME in text for text in actual_texts(two_pages)) >= 2


def test_latin_text_is_set_in_embedded_dejavu_sans(two_pages):
    assert {"DejaVuSans", "DejaVuSans-Bold"} <= {
        name.split("+")[-1] for name in embedded_fonts(two_pages)}


def test_every_class_probability_threshold_and_model_are_printed(two_pages):
    text = " ".join(page_texts(two_pages))
    for label, value in (("Lung opacity", "47.2 %"), ("Normal", "31.8 %"),
                         ("Viral pneumonia", "5.9 %"), ("NIH MERGED", "5.8 %"),
                         ("Sick", "5.2 %"), ("COVID-19", "4.1 %")):
        assert f"{label} {value}" in text
    # The threshold as the pages print it, never as a fraction.
    assert "decision threshold 75 %" in text and "threshold 75 %" in text
    assert "0.75" not in text
    assert "csss-mobilenetv2-demo, version 1.0.0" in text
    assert "Uncertain — reviewed by physician" in text


def test_prescriptions_are_a_table_with_the_pharmacist_and_approval(two_pages):
    text = " ".join(page_texts(two_pages))
    assert "Drug Dose Route Frequency Duration Notes" in text
    assert "Amoxicillin 500 mg By mouth three times a day 7 days Take with food" in text
    assert "Salbutamol inhaler 2 puffs Inhaled" in text
    assert "Oral route" not in text
    # Times in the hospital's zone (the sample's: Asia/Kolkata, UTC+05:30).
    assert "Pharmacy review by" in text and "14 Mar 2025, 15:12 IST" in text
    assert "Approved for release by Ana-María Gonçalves, 14 Mar 2025, 16:12 IST." in text
    assert "Verified by Dr." in text and "14 Mar 2025, 13:12 IST" in text


def test_a_confident_result_has_no_uncertain_banner():
    pdf = render_pdf(sample_content(uncertain=False, long_notes=False, prescriptions=0))
    text = " ".join(page_texts(pdf))
    assert "Uncertain — reviewed by physician" not in text
    assert "Proposal: Lung opacity" in text
    assert "No prescriptions." in text


def test_an_amended_report_says_so_and_lists_the_correction():
    amendment = Amendment("Dr. Kofi Mensah", "doctor", datetime(2025, 3, 15, 9, 0, tzinfo=UTC),
                          "Effusion on the left was missed.", "Viral_Pneumonia")
    content = replace(sample_content(long_notes=False), status="amended", version=2,
                      amendments=[amendment])
    text = " ".join(page_texts(render_pdf(content)))
    assert "AMENDED REPORT — version 2" in text and "Version 2 · amended" in text
    assert "Effusion on the left was missed." in text
    assert "Corrected finding: Viral pneumonia" in text


def test_an_image_reportlab_cannot_read_is_left_out_not_fatal():
    pdf = render_pdf(sample_content(image=b"DICM not an image", long_notes=False))
    assert pdf.startswith(b"%PDF") and "Chest X-ray report" in page_texts(pdf)[0]


def test_runs_keep_punctuation_with_their_script_and_split_at_script_changes():
    chain = tamil_font_chain()
    runs = [(face.script, text) for face, text in chain.runs(f"Mr. ({TAMIL_NAME}), 12 (x)")]
    assert runs == [("latin", "Mr. "), ("tamil", f"({TAMIL_NAME}), 12 "), ("latin", "(x)")]


def test_the_doctors_finding_comes_first_then_help_medicines_and_the_ai_second(two_pages):
    text = " ".join(page_texts(two_pages))
    order = ["Doctor's finding", "Finding: An area of the lung that looks denser than normal",
             "What it means:", "Next steps:", "Questions and help", "+91 422 000 0000",
             "Emergency:", "call 112 now", "Prescriptions", "Pharmacy review by",
             "AI proposal (reviewed by the doctor)", "Proposal: Uncertain", "Approval"]
    at = text.find("Chest X-ray report")  # after the page header, which names the phone too
    for part in order:
        found = text.find(flat(part), at)
        assert found > at, f"{part!r} is missing or comes too early"
        at = found
    assert text.find("AI proposal") > text.find("Doctor's finding") > 0


def test_a_corrected_finding_is_the_one_explained_first():
    amendment = Amendment("Dr. Kofi Mensah", "doctor", datetime(2025, 3, 15, 9, 0, tzinfo=UTC),
                          "Recheck.", "Bacterial_Pneumonia")
    content = replace(sample_content(long_notes=False), status="corrected", version=2,
                      amendments=[amendment])
    text = " ".join(page_texts(render_pdf(content)))
    assert "Finding: Pneumonia caused by bacteria (Bacterial pneumonia) — corrected" in text
    assert text.find("Pneumonia caused by bacteria") < text.find("AI proposal")


def test_a_not_assessable_proposal_is_explained_without_a_disease_or_probabilities():
    content = replace(sample_content(long_notes=False, uncertain=False),
                      ai_label="Not assessable", ai_probabilities={}, ai_uncertain=True)
    text = " ".join(page_texts(render_pdf(content)))
    assert "Proposal: Not assessable (the image could not be assessed)." in text
    assert "Probability" not in text and "Uncertain — reviewed" not in text


def test_no_internal_class_codes_are_printed(two_pages):
    assert "_" not in " ".join(page_texts(two_pages)).replace(flat(AI_NOTICE), "")


def layout_text(pdf: bytes, tmp_path) -> list[str]:
    """The PDF's lines as `pdftotext -layout` sets them: a cell that wraps shows as a
    second line."""
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout.splitlines()


needs_pdftotext = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                     reason="needs pdftotext (poppler-utils)")


@needs_pdftotext
def test_people_read_the_mrn_and_a_short_report_number_not_uuids(two_pages, tmp_path):
    lines = layout_text(two_pages, tmp_path)
    content = sample_content()
    header = [line for line in lines if "Report no. 6F1C-2E0A" in flat(line)]
    assert len(header) == 3  # the header of both pages and the patient table
    assert any("MRN" in line and "MRN-20250314-007" in line for line in lines)
    assert not any("Patient id" in line or "Report id" in line for line in lines)
    # The full ids only in the small print at the end, for the hospital's systems.
    text = flat(" ".join(lines))
    assert text.count(content.report_id) == 1 and text.count(content.patient_id) == 1
    assert (f"Record identifiers, for the hospital's systems: report {content.report_id}; "
            f"patient") in text


def test_a_patient_without_an_mrn_is_told_so():
    pdf = render_pdf(replace(sample_content(long_notes=False), patient_mrn=None))
    assert "MRN not recorded" in " ".join(page_texts(pdf))


@needs_pdftotext
def test_each_prescription_row_and_header_fits_one_line(tmp_path):
    lines = [PrescriptionLine(drug, dose, route, "3 times a day", "14 days", None)
             for drug, dose, route in (("Amoxicillin", "500 mg", "Oral route"),
                                       ("Ceftriaxone", "2 g", "Intravenous route"),
                                       ("Salbutamol", "100 mcg", "Respiratory tract route"))]
    pdf = render_pdf(replace(sample_content(long_notes=False), prescriptions=lines))
    text = layout_text(pdf, tmp_path)
    table = text[text.index(next(line for line in text if line.split()[:1] == ["Drug"])):]
    assert table[0].split() == ["Drug", "Dose", "Route", "Frequency", "Duration", "Notes"]
    for row, expected in zip(table[1:4], ("Amoxicillin 500 mg By mouth 3 times a day 14 days",
                                          "Ceftriaxone 2 g Into a vein 3 times a day 14 days",
                                          "Salbutamol 100 mcg Inhaled 3 times a day 14 days"),
                             strict=True):
        # Spaces aside: pdftotext sets "2 g" as "2g" (a narrow space).
        assert "".join(row.split()).startswith("".join(expected.split())), row


def test_routes_are_in_a_patients_words():
    assert route_words("Oral route") == "By mouth"
    assert route_words("Respiratory tract route") == "Inhaled"
    assert route_words("by mouth after food") == "by mouth after food"
    assert route_words(None) is None
