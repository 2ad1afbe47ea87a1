"""Render a ReportContent to PDF with reportlab (no HTML engine).

Every page carries the hospital header, the report number and patient, the AI notice sentence
word for word, and "Page n of N". People read the patient's MRN and a short report number;
the full ids (what the hospital's systems look up) are in small print at the end. Text goes
through `fonts.chain()`, which embeds one TrueType font per script, so Tamil, Chinese and
accented Latin names print as letters.
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
from csss_fhir.reports import plain_language
from csss_fhir.reports.content import AI_NOTICE, ReportContent
from csss_fhir.reports.fonts import FontChain, chain
from csss_fhir.reports.times import format_time
from csss_fhir.wording import readable, route_words
from ml.infer import NOT_ASSESSABLE

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


def _when(value: datetime, content: ReportContent) -> str:
    return format_time(value, content.timezone)


def _words(name: str) -> str:
    return readable(name)


def _percent(value: float, decimals: int = 0) -> str:
    """A fraction as the pages print it ("75 %"), the sign kept with its number."""
    return f"{value * 100:.{decimals}f}\u00a0%"


class _Styles:
    def __init__(self, fonts: FontChain) -> None:
        base = fonts.base
        self.fonts = fonts
        self.body = ParagraphStyle("body", fontName=base.regular, fontSize=9.5, leading=12.5,
                                   textColor=INK)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=8.5, leading=11)
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
        self.emergency = ParagraphStyle("emergency", parent=self.body, fontName=base.bold,
                                        textColor=ALERT, borderColor=ALERT, borderWidth=0.8,
                                        borderPadding=(4, 6, 4, 6), spaceBefore=6,
                                        spaceAfter=6)
        self.fine = ParagraphStyle("fine", parent=self.small, fontSize=7, leading=9,
                                   textColor=MUTED)
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
        fonts.draw(canvas, WIDTH - MARGIN, top, f"Report no. {content.report_number}", 8.5,
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
    """The report in the order a patient reads it: the doctor's finding and what it means
    first, whom to call, the medicines, and only then the AI's proposal, as reviewed."""
    story: list = [s.p("Chest X-ray report", s.title)]
    if content.status in STATUS_WORDS:
        story.append(s.p(f"{STATUS_WORDS[content.status]} REPORT — version {content.version}; "
                         "it replaces every earlier version.", s.banner))
    story.append(Spacer(1, 2 * mm))
    story.append(_patient_table(content, s))
    story += _finding(content, s)
    story += _contact(content, s)
    story += _pharmacy(content, s)
    story += _ai_proposal(content, s)
    approval = [s.p("Approval", s.heading), s.rich([
        ("Approved for release by ", False), (content.approver_name, True),
        (f", {_when(content.approved_at, content)}.", False)], s.body)]
    story.append(KeepTogether(approval))
    if content.amendments:
        story.append(s.p("Amendments", s.heading))
        for amendment in content.amendments:
            parts = [(f"{_when(amendment.at, content)}, ", False), (amendment.author_name, True),
                     (f" ({amendment.author_role}): ", False), (amendment.note, False)]
            if amendment.finding:
                parts += [(" Corrected finding: ", True), (_words(amendment.finding), False)]
            if amendment.approved_by:
                parts += [(" Approved by ", False), (amendment.approved_by, True),
                          (".", False)]
            story.append(s.rich(parts, s.body))
    story.append(Spacer(1, 4 * mm))
    story.append(s.p(f"Record identifiers, for the hospital's systems: report "
                     f"{content.report_id}; patient {content.patient_id}.", s.fine))
    return story


def _patient_table(content: ReportContent, s: _Styles) -> Table:
    frame_width = WIDTH - 2 * MARGIN
    pairs = [
        ("Patient", content.patient_name), ("MRN", content.patient_mrn or "not recorded"),
        ("Birth date", content.birth_date.isoformat() if content.birth_date else "–"),
        ("Sex", (content.sex or "–").capitalize()),
        ("Scan", f"{content.modality}, {_when(content.scan_started, content)}"),
        ("Released", _when(content.approved_at, content)),
        ("Report no.", content.report_number),
    ]
    rows = []
    for i in range(0, len(pairs), 2):
        row = []
        for label, value in pairs[i:i + 2]:
            row += [s.p(label, s.label), s.p(value, s.cell)]
        rows.append(row)
    value_width = (frame_width - 2 * 23 * mm) / 2
    patient = Table(rows, colWidths=[23 * mm, value_width] * 2, hAlign="LEFT")
    patient.setStyle(TableStyle([
        ("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOX", (0, 0), (-1, -1), 0.5, RULE),
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f8fafc")),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]))
    return patient


def _finding(content: ReportContent, s: _Styles) -> list:
    """The doctor's finding (the corrected one, after an amendment), in plain language."""
    finding = content.current_finding
    explanation = plain_language.explain(finding)
    parts = [("Finding: ", True), (explanation.name, False)]
    if explanation.name.lower() != _words(finding).lower():
        parts.append((f" ({_words(finding)})", False))
    if finding != content.finding:
        parts.append((" — corrected after release; see Amendments.", False))
    flowables = [s.p("Doctor's finding", s.heading), s.rich(parts, s.body),
                 s.rich([("What it means: ", True), (explanation.meaning, False)], s.body),
                 s.rich([("Next steps: ", True), (explanation.next_steps, False)], s.body),
                 Spacer(1, 1.5 * mm),
                 s.rich([("Doctor's notes: ", True), (content.doctor_note, False)], s.body)]
    agreement = "agreed with" if content.agree else "did not agree with"
    flowables.append(s.rich([
        ("Verified by ", False), (content.doctor_name, True),
        (f", {_when(content.verified_at, content)}, who {agreement} the AI proposal "
         "(below).", False)], s.body))
    return flowables


def _contact(content: ReportContent, s: _Styles) -> list:
    """Whom to call: the hospital for questions, the emergency number when worse."""
    phone = f" on {content.hospital_phone}" if content.hospital_phone else ""
    flowables = [s.p("Questions and help", s.heading), s.p(
        f"Questions about this report: call {content.hospital_name}{phone}, or ask your "
        "doctor. Do not stop or change a medicine without asking the pharmacist or your "
        "doctor.", s.body)]
    if content.emergency_number:
        flowables.append(s.p(emergency_line(content.emergency_number), s.emergency))
    return flowables


def emergency_line(number: str) -> str:
    """The emergency line of the report (the patient pages carry the same words)."""
    return (f"Emergency: if you have trouble breathing, chest pain, blue or grey lips, "
            f"faint, or cough up blood, call {number} now.")


def _pharmacy(content: ReportContent, s: _Styles) -> list:
    """The medicines and the pharmacist's review. A pharmacist's override of a dose
    warning (issue 11, item 4) belongs at the end of this section, after the review line."""
    frame_width = WIDTH - 2 * MARGIN
    flowables: list = [s.p("Prescriptions", s.heading)]
    if content.prescriptions:
        header = ["Drug", "Dose", "Route", "Frequency", "Duration", "Notes"]
        rows = [[s.p(h, s.cell_head) for h in header]] + [
            [s.p(value or "–", s.cell) for value in (
                line.medication, line.dose, route_words(line.route), line.frequency,
                line.duration, line.note)] for line in content.prescriptions
        ]
        # Route wide enough for "By mouth" and "Into a vein" on one line.
        widths = [32 * mm, 21 * mm, 24 * mm, 27 * mm, 21 * mm]
        widths.append(frame_width - sum(widths))
        table = Table(rows, colWidths=widths, hAlign="LEFT", repeatRows=1)
        table.setStyle(_grid(header=True))
        flowables.append(table)
    else:
        flowables.append(s.p("No prescriptions.", s.body))
    flowables.append(Spacer(1, 2 * mm))
    flowables.append(s.rich([
        ("Pharmacy review by ", False), (content.pharmacist_name, True),
        (f", {_when(content.pharmacy_reviewed_at, content)}: ", False),
        (content.pharmacy_note, False)], s.body))
    for line in content.prescriptions:  # an override of a dose warning follows the review
        for warning in line.warnings:
            flowables.append(s.rich([("Dose warning: ", True), (warning, False),
                                     (". Pharmacist's override: ", True),
                                     (line.override_reason or "none recorded", False)],
                                    s.body))
    return flowables


def _ai_proposal(content: ReportContent, s: _Styles) -> list:
    """The AI's proposal, second and labelled: the doctor reviewed it; it is not the result."""
    flowables: list = [s.p("AI proposal (reviewed by the doctor)", s.heading), s.p(
        "A computer program suggested a first reading to help the doctor. It is not the "
        "result: the doctor's finding above is.", s.small), Spacer(1, 2.5 * mm)]
    if content.ai_label == NOT_ASSESSABLE:
        explanation = plain_language.explain(content.ai_label)
        flowables.append(s.rich([("Proposal: ", True), ("Not assessable", True),
                                 (f" ({explanation.name.lower()}). ", False),
                                 (explanation.meaning, False)], s.body))
    else:
        if content.ai_uncertain:
            flowables.append(s.p("Uncertain — reviewed by physician", s.banner))
        flowables.append(s.rich([
            ("Proposal: ", True), (_words(content.ai_label), False),
            (f" (top class {_words(content.ai_top_class)}, confidence "
             f"{_percent(content.ai_confidence, 1)}; decision threshold "
             f"{_percent(content.threshold)}). ",
             False)], s.body))
    flowables.append(s.rich([("Model: ", True), (
        f"{content.model_name}, version {content.model_version}.", False)], s.body))
    flowables = [KeepTogether(flowables)]  # the heading never ends a page alone
    flowables += _images(content, s)
    if content.ai_probabilities:
        flowables.append(Spacer(1, 2 * mm))
        flowables.append(_probabilities(content, s))
    return flowables


def _probabilities(content: ReportContent, s: _Styles) -> Table:
    bar_width = 70 * mm
    rows = [[s.p("Class", s.cell_head), s.p("Probability", s.cell_head),
             s.p(f"(red line: threshold {_percent(content.threshold)})", s.caption)]]
    for name, value in sorted(content.ai_probabilities.items(), key=lambda kv: -kv[1]):
        rows.append([
            s.p(_words(name), s.cell), s.p(_percent(value, 1), s.cell),
            _ProbabilityBar(value, content.threshold, name == content.ai_top_class, bar_width),
        ])
    table = Table(rows, colWidths=[45 * mm, 25 * mm, bar_width + 6 * mm], hAlign="LEFT")
    table.setStyle(_grid(header=True) + [("VALIGN", (2, 1), (2, -1), "MIDDLE")])
    return table


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
