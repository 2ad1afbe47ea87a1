"""Fonts for the report: one embedded TrueType font per script, chosen per run of text.

No single small font covers every name a patient may have, so the report keeps a chain:
DejaVu Sans (Latin, accented Latin, Greek, Cyrillic), Noto Sans Tamil (the PyPI package
`fontpkg-noto-sans-tamil`) and a CJK TrueType font from Debian (`fonts-droid-fallback` or
`fonts-wqy-microhei`). Each character goes to the first font of the chain that has its glyph;
spaces, digits and punctuation stay with the run they stand in, so a word is never split
between fonts (reportlab shapes a word with one font). Tamil is shaped with HarfBuzz
(`uharfbuzz`) so that its vowel signs sit where a reader expects them; shaped runs drawn
on the canvas carry `/ActualText`, so copying or searching the name gives its real letters.

A font that is missing is skipped with one warning; a character no font has falls back to
the first font (it prints as a box, and the warning says which script lacks a font).
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import registerFontFamily
from reportlab.pdfbase.ttfonts import TTFError, TTFont, shapeStr

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

log = logging.getLogger(__name__)

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
CJK_CANDIDATES = (
    (Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"), 0),
    (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"), 0),
    (Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"), 0),
    (Path("/usr/share/fonts/truetype/arphic/uming.ttc"), 0),
)


@dataclass(frozen=True)
class Face:
    """One registered font: its regular and bold names and the characters it has."""

    script: str
    regular: str
    bold: str
    chars: frozenset[int]
    shaped: bool = False  # needs HarfBuzz shaping (complex script)

    def name(self, bold: bool) -> str:
        return self.bold if bold else self.regular


@dataclass(frozen=True)
class FontChain:
    faces: tuple[Face, ...]

    @property
    def base(self) -> Face:
        return self.faces[0]

    def has(self, script: str) -> bool:
        return any(face.script == script for face in self.faces)

    def runs(self, text: str) -> list[tuple[Face, str]]:
        """Split text into (face, substring) runs at script changes.

        Neutral characters (spaces, digits, punctuation) stay with the word they touch:
        those before a space end the current run, those after it open the next one, so no
        word mixes two fonts.
        """
        text = unicodedata.normalize("NFC", text)
        runs: list[list] = []
        pending = ""  # neutral characters since the last space, not yet given to a run
        for char in text:
            code = ord(char)
            if _neutral(char):
                if runs and not pending and not char.isspace() and code in runs[-1][0].chars:
                    runs[-1][1] += char
                else:
                    pending += char
                continue
            face = self._face_for(code)
            if runs and runs[-1][0] is face:
                runs[-1][1] += pending + char
            else:
                cut = max(pending.rfind(" "), pending.rfind("\n")) + 1
                if runs:
                    runs[-1][1] += pending[:cut]
                    pending = pending[cut:]
                runs.append([face, pending + char])
            pending = ""
        if pending:
            if runs:
                runs[-1][1] += pending
            else:
                runs.append([self.base, pending])
        return [(face, run) for face, run in runs]

    def _face_for(self, code: int) -> Face:
        for face in self.faces:
            if code in face.chars:
                return face
        _warn_missing(code)
        return self.base

    def markup(self, text: str, *, bold: bool = False) -> str:
        """Paragraph markup for `text` with a <font> tag per run, newlines as <br/>."""
        parts = []
        for face, run in self.runs(text):
            body = escape(run).replace("\n", "<br/>")
            if face is self.base:
                parts.append(body)
            else:
                parts.append(f'<font name="{face.name(bold)}">{body}</font>')
        return "".join(parts)

    def needs_shaping(self, text: str) -> bool:
        return any(face.shaped for face, _ in self.runs(text))

    def width(self, text: str, size: float, *, bold: bool = False) -> float:
        return sum(_run_width(face.name(bold), run, size, face.shaped)
                   for face, run in self.runs(text))

    def draw(self, canvas: Canvas, x: float, y: float, text: str, size: float, *,
             bold: bool = False, align: str = "left") -> None:
        """Draw one line on a canvas, run by run (shaped runs carry their ActualText)."""
        if align == "right":
            x -= self.width(text, size, bold=bold)
        for face, run in self.runs(text):
            name = face.name(bold)
            canvas.setFont(name, size)
            if face.shaped:
                shaped = shapeStr(run, name, size)
                canvas._code.append(f"/Span <</ActualText {_pdf_text(run)}>> BDC")
                canvas.drawString(x, y, shaped)
                canvas._code.append("EMC")
            else:
                canvas.drawString(x, y, run)
            x += _run_width(name, run, size, face.shaped)


def _neutral(char: str) -> bool:
    """Spaces, punctuation, digits and marks: characters every script's text uses."""
    category = unicodedata.category(char)
    return category[0] in "ZPNMS" and not ("\u2e80" <= char <= "\u9fff")


def _run_width(name: str, run: str, size: float, shaped: bool) -> float:
    if shaped:
        return sum(d.x_advance for d in shapeStr(run, name, size).__shapeData__) * size / 1000
    return pdfmetrics.stringWidth(run, name, size)


def _pdf_text(text: str) -> str:
    """A PDF text string in UTF-16BE hex, as ActualText wants it."""
    return "<FEFF" + text.encode("utf-16-be").hex().upper() + ">"


@cache
def _warn_missing(code: int) -> None:
    log.warning("no report font has the glyph for U+%04X (%s); install the fonts named in "
                "csss_fhir/reports/fonts.py", code, unicodedata.name(chr(code), "unnamed"))


class _UnshapedFont(TTFont):
    """A TrueType font that reportlab never shapes.

    Shaping is switched on per paragraph, and reportlab then shapes every word with its
    font's HarfBuzz features (ligatures included): "fi" would become one glyph and copy as
    U+FB01. Only scripts that need shaping get it; raising here is how reportlab's
    `shapeFragWord` is told to leave a word alone.
    """

    def hbFont(self, fontSize: float = 10):
        raise AttributeError("this font is not shaped")


def _register(name: str, path: Path, subfont: int = 0, shaped: bool = False) -> TTFont | None:
    kind = TTFont if shaped else _UnshapedFont
    try:
        font = kind(name, str(path), subfontIndex=subfont, shapable=True)
    except (OSError, TTFError) as err:
        log.warning("report font %s could not be loaded: %s", path, err)
        return None
    pdfmetrics.registerFont(font)
    return font


def _tamil_path() -> Path | None:
    try:
        import fontpkg_noto_sans_tamil

        files = Path(fontpkg_noto_sans_tamil.__file__).parent / "files"
    except ImportError:
        return None
    return next(iter(sorted(files.glob("NotoSansTamil*.ttf"))), None)


def _shaping_available() -> bool:
    try:
        import uharfbuzz  # noqa: F401
    except ImportError:
        return False
    return True


def _faces() -> Iterator[Face]:
    regular = _register("ReportSans", DEJAVU / "DejaVuSans.ttf")
    bold = _register("ReportSans-Bold", DEJAVU / "DejaVuSans-Bold.ttf")
    if regular and bold:
        yield Face("latin", "ReportSans", "ReportSans-Bold",
                   frozenset(regular.face.charToGlyph))
    else:
        log.warning("DejaVu Sans not found (Debian: fonts-dejavu-core); accented names may "
                    "not print")
        yield Face("latin", "Helvetica", "Helvetica-Bold", frozenset(range(32, 256)))
    tamil_path = _tamil_path()
    shaping = _shaping_available()
    tamil = _register("ReportTamil", tamil_path, shaped=shaping) if tamil_path else None
    if tamil:
        # The package ships the variable font; its default instance is the regular weight,
        # used for bold runs too.
        chars = frozenset(tamil.face.charToGlyph)
        yield Face("tamil", "ReportTamil", "ReportTamil", chars, shaped=shaping)
    else:
        log.warning("Noto Sans Tamil not found (pip: fontpkg-noto-sans-tamil); Tamil names "
                    "will not print")
    for path, index in CJK_CANDIDATES:
        if path.exists():
            cjk = _register("ReportCJK", path, index)
            if cjk:
                yield Face("cjk", "ReportCJK", "ReportCJK", frozenset(cjk.face.charToGlyph))
                break
    else:
        log.warning("no CJK TrueType font found (Debian: fonts-droid-fallback); Chinese, "
                    "Japanese and Korean names will not print")


@cache
def chain() -> FontChain:
    """The report's fonts, registered with reportlab once per process."""
    faces = tuple(_faces())
    for face in faces:
        if face.regular != "Helvetica":
            registerFontFamily(face.regular, normal=face.regular, bold=face.bold,
                               italic=face.regular, boldItalic=face.bold)
    return FontChain(faces)
