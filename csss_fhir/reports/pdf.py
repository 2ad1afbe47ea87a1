"""Render a ReportContent to PDF with reportlab.

A TrueType font with wide Unicode coverage (DejaVu Sans) is embedded when the system has it,
so names in accented Latin, Greek or Cyrillic print as letters; Helvetica is the fallback.
"""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Image, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from csss_fhir.reports.content import AI_NOTICE, ReportContent

FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
)


@cache
def _fonts() -> tuple[str, str]:
    for regular, bold in FONT_CANDIDATES:
        if Path(regular).exists() and Path(bold).exists():
            pdfmetrics.registerFont(TTFont("ReportSans", regular))
            pdfmetrics.registerFont(TTFont("ReportSans-Bold", bold))
            return "ReportSans", "ReportSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def render_pdf(content: ReportContent) -> bytes:
    regular, bold = _fonts()
    styles = getSampleStyleSheet()
    body = ParagraphStyle("body", parent=styles["BodyText"], fontName=regular, fontSize=9.5,
                          leading=12)
    heading = ParagraphStyle("heading", parent=body, fontName=bold, fontSize=11.5,
                             spaceBefore=8, spaceAfter=3)
    title = ParagraphStyle("title", parent=body, fontName=bold, fontSize=15, leading=18)
    banner = ParagraphStyle("banner", parent=body, fontName=bold, textColor=colors.white,
                            backColor=colors.HexColor("#b42318"), borderPadding=4)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                            topMargin=28 * mm, bottomMargin=24 * mm,
                            title="Chest X-ray report", author=content.hospital_name)

    def decorate(canvas, document) -> None:  # every page: header, notice, page number
        canvas.saveState()
        width, height = A4
        canvas.setFont(bold, 12)
        canvas.drawString(18 * mm, height - 14 * mm, content.hospital_name)
        canvas.setFont(regular, 8.5)
        if content.hospital_address:
            canvas.drawString(18 * mm, height - 19 * mm, content.hospital_address)
        canvas.drawRightString(width - 18 * mm, height - 14 * mm, f"Report {content.report_id}")
        canvas.line(18 * mm, height - 22 * mm, width - 18 * mm, height - 22 * mm)
        notice = Paragraph(escape(AI_NOTICE), ParagraphStyle("notice", fontName=regular,
                                                             fontSize=7.5, leading=9))
        _, notice_height = notice.wrap(width - 36 * mm, 20 * mm)
        notice.drawOn(canvas, 18 * mm, 10 * mm + 5 * mm)
        canvas.drawRightString(width - 18 * mm, 10 * mm, f"Page {document.page}")
        del notice_height
        canvas.restoreState()

    story: list = [_p("Chest X-ray report (AI-assisted)", title), Spacer(1, 4 * mm)]
    patient_rows = [
        ["Patient", content.patient_name], ["Patient id", content.patient_id],
        ["MRN", content.patient_mrn or "-"],
        ["Birth date", content.birth_date.isoformat() if content.birth_date else "-"],
        ["Sex", content.sex or "-"],
        ["Scan", f"{content.modality}, {_when(content.scan_started)}"],
    ]
    story.append(_table(patient_rows, regular, bold))
    if content.image:
        try:
            thumb = Image(io.BytesIO(content.image), width=55 * mm, height=55 * mm,
                          kind="proportional")
            story += [Spacer(1, 3 * mm), thumb]
        except OSError:
            pass  # the stored scan is DICOM or unreadable by reportlab: no thumbnail
    story.append(_p("AI result", heading))
    if content.ai_uncertain:
        story += [_p("Uncertain — reviewed by physician", banner), Spacer(1, 2 * mm)]
    story.append(_p(
        f"Proposal: {content.ai_label.replace('_', ' ')} (top class "
        f"{content.ai_top_class.replace('_', ' ')}, confidence {content.ai_confidence:.1%}; "
        f"decision threshold {content.threshold:.2f}). Model {content.model_name} "
        f"version {content.model_version}.", body))
    probability_rows = [["Class", "Probability"]] + [
        [name.replace("_", " "), f"{p:.1%}"]
        for name, p in sorted(content.ai_probabilities.items(), key=lambda kv: -kv[1])
    ]
    story.append(_table(probability_rows, regular, bold, header=True))
    story.append(_p("Physician's finding", heading))
    story.append(_p(
        f"{content.finding.replace('_', ' ')} — "
        f"{'agrees with' if content.agree else 'differs from'} the AI proposal. "
        f"Verified by {content.doctor_name}, {_when(content.verified_at)}.", body))
    story.append(_p(content.doctor_note, body))
    story.append(_p("Prescriptions", heading))
    if content.prescriptions:
        rows = [["Drug", "Dose", "Route", "Frequency", "Duration", "Notes"]] + [
            [line.medication, line.dose or "-", line.route or "-", line.frequency or "-",
             line.duration or "-", line.note or ""] for line in content.prescriptions
        ]
        story.append(_table(rows, regular, bold, header=True, wrap=body))
    else:
        story.append(_p("No prescriptions.", body))
    story.append(_p(
        f"Pharmacy review by {content.pharmacist_name}, "
        f"{_when(content.pharmacy_reviewed_at)}: {content.pharmacy_note}", body))
    story.append(_p("Approval", heading))
    story.append(_p(f"Approved for release by {content.approver_name}, "
                    f"{_when(content.approved_at)}.", body))
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()


def _table(rows: list[list[str]], regular: str, bold: str, *, header: bool = False,
           wrap: ParagraphStyle | None = None) -> Table:
    if wrap is not None:
        rows = [[Paragraph(escape(str(cell)), wrap) for cell in row] for row in rows]
    table = Table(rows, hAlign="LEFT")
    style = [("FONTNAME", (0, 0), (-1, -1), regular), ("FONTSIZE", (0, 0), (-1, -1), 9),
             ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#c0c4cc"))]
    if header:
        style += [("FONTNAME", (0, 0), (-1, 0), bold),
                  ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eef1f5"))]
    else:
        style.append(("FONTNAME", (0, 0), (0, -1), bold))
    table.setStyle(TableStyle(style))
    return table
