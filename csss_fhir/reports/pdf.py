"""Render a ReportContent to PDF with reportlab (no HTML engine).

Every page carries the hospital header, the report id and patient, the AI notice sentence
word for word, and "Page n of N". Text goes through `fonts.chain()`, which embeds one
TrueType font per script, so Tamil, Chinese and accented Latin names print as letters.
"""

from __future__ import annotations

import io
from datetime import datetime

from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from csss_fhir import limits
from csss_fhir.reports.content import AI_NOTICE, ReportContent
from csss_fhir.reports.fonts import FontChain, chain

# Images go into the PDF as binary Flate streams, not ASCII85 text: without reportlab's C
# accelerator the pure-Python ASCII85 encoder took 75 % of the render time (benchmarks/pdf.py).
rl_config.useA85 = 0

WIDTH, HEIGHT = A4
MARGIN = 18 * mm
HEADER_BOTTOM = HEIGHT - 27 * mm
FOOTER_TOP = 20 * mm
INK = colors.HexColor("#1f2937")
MUTED = colors.HexColor("#6b7280")
RULE = colors.HexColor("#c0c4cc")
HEADER_FILL = colors.HexColor("#eef1f5")
ALERT = colors.HexColor("#b42318")
ACCENT = colors.HexColor("#1d4ed8")
STATUS_WORDS = {"amended": "AMENDED", "corrected": "CORRECTED"}


def _when(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _words(name: str) -> str:
    return name.replace("_", " ")


class _Styles:
    def __init__(self, fonts: FontChain) -> None:
        base = fonts.base
        self.fonts = fonts
        self.body = ParagraphStyle("body", fontName=base.regular, fontSize=9.5, leading=12.5,
                                   textColor=INK)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=8.5, leading=11)
        self.ident = ParagraphStyle("ident", parent=self.small, fontSize=7.8, leading=11.5)
        self.label = ParagraphStyle("label", parent=self.small, fontName=base.bold,
                                    textColor=MUTED)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=9, leading=11.5)
        self.cell_head = ParagraphStyle("cellhead", parent=self.cell, fontName=base.bold)
        self.heading = ParagraphStyle("heading", parent=self.body, fontName=base.bold,
                                      fontSize=11.5, leading=14, spaceBefore=9, spaceAfter=4,
                                      textColor=ACCENT)
        self.title = ParagraphStyle("title", parent=self.body, fontName=base.bold,
                                    fontSize=15, leading=19, spaceAfter=2)
        self.banner = ParagraphStyle("banner", parent=self.body, fontName=base.bold,
                                     fontSize=10.5, textColor=colors.white, backColor=ALERT,
                                     borderPadding=(4, 6, 4, 6), spaceBefore=2, spaceAfter=6)
        self.caption = ParagraphStyle("caption", parent=self.small, fontSize=7.5, leading=9,
                                      textColor=MUTED, alignment=1)

    def p(self, text: str, style: ParagraphStyle, *, bold: bool = False) -> Paragraph:
        """A paragraph of plain text (escaped here), one font per script."""
        text = _bounded(text)
        markup = self.fonts.markup(text, bold=bold or style.fontName == self.fonts.base.bold)
        if self.fonts.needs_shaping(text):
            style = ParagraphStyle(style.name + "-shaped", parent=style, shaping=1)
        return Paragraph(markup, style)

    def rich(self, parts: list[tuple[str, bool]], style: ParagraphStyle) -> Paragraph:
        """A paragraph from (text, bold) parts."""
        parts = [(_bounded(t), bold) for t, bold in parts]
        markup = "".join(f"<b>{self.fonts.markup(t, bold=True)}</b>" if bold
                         else self.fonts.markup(t) for t, bold in parts)
        text = "".join(t for t, _ in parts)
        if self.fonts.needs_shaping(text):
            style = ParagraphStyle(style.name + "-shaped", parent=style, shaping=1)
        return Paragraph(markup, style)


def _bounded(text: str) -> str:
    """Text cut at limits.NOTE characters: layout time grows faster than the text (a 600 KB
    note took minutes), and a row stored before the limits existed may be longer."""
    return text if len(text) <= limits.NOTE else text[:limits.NOTE] + " … (shortened)"


class _ProbabilityBar(Flowable):
    """A horizontal bar for one class probability, with the threshold marked."""

    def __init__(self, value: float, threshold: float, top: bool, width: float) -> None:
        super().__init__()
        self.value, self.threshold, self.top = value, threshold, top
        self.width, self.height = width, 7

    def draw(self) -> None:
        canvas = self.canv
        canvas.setFillColor(HEADER_FILL)
        canvas.rect(0, 0, self.width, self.height, stroke=0, fill=1)
        canvas.setFillColor(ACCENT if self.top else MUTED)
        canvas.rect(0, 0, self.width * max(0.0, min(1.0, self.value)), self.height,
                    stroke=0, fill=1)
        canvas.setStrokeColor(ALERT)
        canvas.setLineWidth(0.8)
        x = self.width * self.threshold
        canvas.line(x, -1.5, x, self.height + 1.5)


class _NumberedCanvas(Canvas):
    """Defers each page so that its footer can say "Page n of N"."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self._draw_page_number(total)
            super().showPage()
        super().save()

    def _draw_page_number(self, total: int) -> None:
        self.setFont(chain().base.regular, 8)
        self.setFillColor(MUTED)
        self.drawRightString(WIDTH - MARGIN, 9 * mm, f"Page {self._pageNumber} of {total}")


def render_pdf(content: ReportContent) -> bytes:
    """The report as PDF bytes (A4)."""
    fonts = chain()
    styles = _Styles(fonts)
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        # The frame pads its content by 6 pt: the margins make text line up with the header.
        buffer, pagesize=A4, leftMargin=MARGIN - 6, rightMargin=MARGIN - 6,
        topMargin=HEIGHT - HEADER_BOTTOM + 5 * mm, bottomMargin=FOOTER_TOP + 5 * mm,
        title="Chest X-ray report", author=content.hospital_name,
        subject=f"Report {content.report_id}", creator="CSSS-FHIR",
    )
    notice = styles.p(AI_NOTICE, ParagraphStyle("notice", parent=styles.small, fontSize=7.5,
                                                 leading=9.2, textColor=INK))

    def decorate(canvas: Canvas, document: SimpleDocTemplate) -> None:
        canvas.saveState()
        top = HEIGHT - 13 * mm
        fonts.draw(canvas, MARGIN, top, content.hospital_name, 13, bold=True)
        canvas.setFillColor(MUTED)
        for i, line in enumerate(content.hospital_address.splitlines()[:2]):
            fonts.draw(canvas, MARGIN, top - 5 * mm - i * 3.6 * mm, line.strip(), 8.5)
        fonts.draw(canvas, WIDTH - MARGIN, top, f"Report {content.report_id}", 8.5,
                   align="right")
        version = f"Version {content.version}"
        if content.status in STATUS_WORDS:
            version += f" · {STATUS_WORDS[content.status].lower()}"
        fonts.draw(canvas, WIDTH - MARGIN, top - 4.2 * mm, version, 8.5, align="right")
        fonts.draw(canvas, WIDTH - MARGIN, top - 8.4 * mm,
                   f"{content.patient_name} · born "
                   f"{content.birth_date.isoformat() if content.birth_date else 'unknown'}",
                   8.5, align="right")
        canvas.setStrokeColor(RULE)
        canvas.setLineWidth(0.6)
        canvas.line(MARGIN, HEADER_BOTTOM, WIDTH - MARGIN, HEADER_BOTTOM)
        canvas.line(MARGIN, FOOTER_TOP, WIDTH - MARGIN, FOOTER_TOP)
        _, height = notice.wrap(WIDTH - 2 * MARGIN - 28 * mm, 15 * mm)
        notice.drawOn(canvas, MARGIN, FOOTER_TOP - 2 * mm - height)
        canvas.restoreState()

    doc.build(_story(content, styles), onFirstPage=decorate, onLaterPages=decorate,
              canvasmaker=_NumberedCanvas)
    return buffer.getvalue()


def _story(content: ReportContent, s: _Styles) -> list:
    frame_width = WIDTH - 2 * MARGIN
    story: list = [s.p("Chest X-ray report (AI-assisted)", s.title)]
    if content.status in STATUS_WORDS:
        story.append(s.p(f"{STATUS_WORDS[content.status]} REPORT — version {content.version}; "
                         "it replaces every earlier version.", s.banner))
    story.append(Spacer(1, 2 * mm))

    pairs = [
        ("Patient", content.patient_name), ("Patient id", content.patient_id),
        ("MRN", content.patient_mrn or "–"),
        ("Birth date", content.birth_date.isoformat() if content.birth_date else "–"),
        ("Sex", (content.sex or "–").capitalize()),
        ("Scan", f"{content.modality}, {_when(content.scan_started)}"),
        ("Report id", content.report_id),
        ("Released", _when(content.approved_at)),
    ]
    rows = []
    for i in range(0, len(pairs), 2):
        row = []
        for label, value in pairs[i:i + 2]:
            style = s.ident if label.endswith(" id") else s.cell  # a UUID fits one line
            row += [s.p(label, s.label), s.p(value, style)]
        rows.append(row)
    value_width = (frame_width - 2 * 23 * mm) / 2
    patient = Table(rows, colWidths=[23 * mm, value_width] * 2, hAlign="LEFT")
    patient.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOX", (0, 0), (-1, -1), 0.5, RULE),
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f8fafc")),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    story.append(patient)
    story += _images(content, s)

    story.append(s.p("AI result", s.heading))
    if content.ai_uncertain:
        story.append(s.p("Uncertain — reviewed by physician", s.banner))
    story.append(s.rich([
        ("Proposal: ", True), (_words(content.ai_label), False),
        (f" (top class {_words(content.ai_top_class)}, confidence "
         f"{content.ai_confidence:.1%}; decision threshold {content.threshold:.2f}). ", False),
        ("Model: ", True), (f"{content.model_name}, version {content.model_version}.", False),
    ], s.body))
    story.append(Spacer(1, 2 * mm))
    bar_width = 70 * mm
    probability_rows = [[s.p("Class", s.cell_head), s.p("Probability", s.cell_head),
                         s.p(f"(red line: threshold {content.threshold:.2f})", s.caption)]]
    for name, value in sorted(content.ai_probabilities.items(), key=lambda kv: -kv[1]):
        probability_rows.append([
            s.p(_words(name), s.cell), s.p(f"{value:.1%}", s.cell),
            _ProbabilityBar(value, content.threshold, name == content.ai_top_class, bar_width),
        ])
    probabilities = Table(probability_rows, colWidths=[45 * mm, 25 * mm, bar_width + 6 * mm],
                          hAlign="LEFT")
    probabilities.setStyle(_grid(header=True) + [("VALIGN", (2, 1), (2, -1), "MIDDLE")])
    story.append(probabilities)

    story.append(s.p("Physician's finding", s.heading))
    agreement = "agrees with" if content.agree else "differs from"
    story.append(s.rich([("Finding: ", True), (_words(content.finding), False),
                         (f" — {agreement} the AI proposal.", False)], s.body))
    story.append(s.rich([("Verified by ", False), (content.doctor_name, True),
                         (f", {_when(content.verified_at)}.", False)], s.body))
    story.append(Spacer(1, 1.5 * mm))
    story.append(s.rich([("Notes: ", True), (content.doctor_note, False)], s.body))

    story.append(s.p("Prescriptions", s.heading))
    if content.prescriptions:
        header = ["Drug", "Dose", "Route", "Frequency", "Duration", "Notes"]
        rows = [[s.p(h, s.cell_head) for h in header]] + [
            [s.p(value or "–", s.cell) for value in (
                line.medication, line.dose, line.route, line.frequency, line.duration,
                line.note)] for line in content.prescriptions
        ]
        widths = [36 * mm, 20 * mm, 18 * mm, 27 * mm, 20 * mm]
        widths.append(frame_width - sum(widths))
        table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
        table.setStyle(_grid(header=True))
        story.append(table)
    else:
        story.append(s.p("No prescriptions.", s.body))
    story.append(Spacer(1, 2 * mm))
    story.append(s.rich([("Pharmacy review by ", False), (content.pharmacist_name, True),
                         (f", {_when(content.pharmacy_reviewed_at)}: ", False),
                         (content.pharmacy_note, False)], s.body))

    approval = [s.p("Approval", s.heading), s.rich([
        ("Approved for release by ", False), (content.approver_name, True),
        (f", {_when(content.approved_at)}.", False)], s.body)]
    story.append(KeepTogether(approval))
    if content.amendments:
        story.append(s.p("Amendments", s.heading))
        for amendment in content.amendments:
            parts = [(f"{_when(amendment.at)}, ", False), (amendment.author_name, True),
                     (f" ({amendment.author_role}): ", False), (amendment.note, False)]
            if amendment.finding:
                parts += [(" Corrected finding: ", True), (_words(amendment.finding), False)]
            story.append(s.rich(parts, s.body))
    return story


def _images(content: ReportContent, s: _Styles) -> list:
    """The scan thumbnail beside the Grad-CAM overlay, each with a caption."""
    size = 58 * mm
    cells, captions = [], []
    for data, caption in ((content.image, "Scan"),
                          (content.gradcam, "Grad-CAM: regions that drove the AI's top class")):
        if not data:
            continue
        try:
            cells.append(Image(io.BytesIO(data), width=size, height=size, kind="proportional"))
        except OSError:
            continue  # not an image reportlab can read (DICOM): the report goes on without
        captions.append(s.p(caption, s.caption))
    if not cells:
        return []
    if content.image and not content.gradcam:
        cells.append(s.p("Grad-CAM overlay not available for this scan.", s.caption))
        captions.append("")
    table = Table([cells, captions], colWidths=[size + 8 * mm] * len(cells), hAlign="LEFT")
    table.setStyle(TableStyle([("ALIGN", (0, 0), (-1, -1), "CENTER"),
                               ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]))
    return [Spacer(1, 3 * mm), table]


def _grid(*, header: bool) -> list[tuple]:
    commands = [("VALIGN", (0, 0), (-1, -1), "TOP"), ("GRID", (0, 0), (-1, -1), 0.25, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), HEADER_FILL))
    return commands
