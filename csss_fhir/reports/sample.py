"""A made-up report for previews, benchmarks and tests: no real patient.

The names exercise the font chain: Tamil, Chinese and accented Latin in one document.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from csss_fhir.reports.content import PrescriptionLine, ReportContent

TAMIL_NAME = "கார்த்திகேயன் சுப்பிரமணியம்"
CHINESE_NAME = "王秀英"
LATIN_NAME = "Þórdís Ñúñez-Åkesson"

PROBABILITIES = {"COVID": 0.041, "Lung_Opacity": 0.472, "NIH_MERGED": 0.058,
                 "Normal": 0.318, "Sick": 0.052, "Viral_Pneumonia": 0.059}


def sample_content(*, patient_name: str = TAMIL_NAME, image: bytes | None = None,
                   gradcam: bytes | None = None, prescriptions: int = 3,
                   long_notes: bool = True, uncertain: bool = True) -> ReportContent:
    """A report whose layout shows every section; `long_notes` makes it run to two pages."""
    approved = datetime(2025, 3, 14, 10, 42, tzinfo=UTC)
    note = ("Patchy opacity in the right lower zone with air bronchograms; no pleural "
            "effusion; heart size normal. Compared with the AI proposal, the distribution "
            "favours an infective process. Recommend clinical correlation and follow-up "
            "radiograph in six weeks. ")
    lines = [
        PrescriptionLine("Amoxicillin", "500 mg", "Oral route", "three times a day", "7 days",
                         "Take with food"),
        PrescriptionLine("Paracetamol", "1 g", "Oral route", "every 6 hours as needed", "5 days",
                         "At most 4 g a day"),
        PrescriptionLine("Salbutamol inhaler", "2 puffs", "Respiratory tract route",
                         "four times a day", "14 days",
                         f"Explained to the patient's son {CHINESE_NAME}"),
        PrescriptionLine("Prednisolone", "40 mg", "Oral route", "once a day", "5 days",
                         "In the morning"),
        PrescriptionLine("Omeprazole", "20 mg", "Oral route", "once a day", "5 days",
                         "While on prednisolone"),
    ]
    top = max(PROBABILITIES, key=PROBABILITIES.get)
    return ReportContent(
        hospital_name="Kōvai Medical Centre – Radiology",
        hospital_address="12 Avinashi Road, Coimbatore 641014, India\n+91 422 000 0000",
        report_id="6f1c2e0a-8a7b-4c1e-9d7e-2b5f3a9c4d10",
        patient_name=patient_name, patient_id="0b7d9c1e-3f2a-4b8c-9e1d-5a6b7c8d9e0f",
        patient_mrn="MRN-20250314-007", birth_date=date(1961, 7, 2), sex="male",
        scan_started=approved - timedelta(hours=5), modality="DX", image=image,
        ai_label="Uncertain" if uncertain else top, ai_top_class=top,
        ai_confidence=PROBABILITIES[top], ai_probabilities=dict(PROBABILITIES),
        threshold=0.75, ai_uncertain=uncertain, model_name="csss-mobilenetv2-demo",
        model_version="1.0.0",
        doctor_name=f"Dr. {LATIN_NAME}", verified_at=approved - timedelta(hours=3),
        finding="Lung_Opacity", agree=False,
        doctor_note=(note * 6 if long_notes else note).strip(),
        pharmacist_name=CHINESE_NAME, pharmacy_reviewed_at=approved - timedelta(hours=1),
        pharmacy_note="No interactions with the patient's current medication (metformin).",
        approver_name="Ana-María Gonçalves", approved_at=approved,
        prescriptions=lines[:prescriptions], gradcam=gradcam,
        timezone="Asia/Kolkata", emergency_number="112", hospital_phone="+91 422 000 0000",
    )
