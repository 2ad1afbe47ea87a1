"""The patient's help assistant: fixed answers chosen by keywords, and "my scan" answered
from the patient's own scan states. No Flask, no model, no free-text generation: what it
says is written here, and it never tells a patient anything about a preliminary AI result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from csss_fhir.workflow.states import DESCRIPTIONS, ScanState


@dataclass(frozen=True)
class ScanStatus:
    uploaded: datetime
    state: str


@dataclass(frozen=True)
class Answer:
    topic: str
    text: str


@dataclass(frozen=True)
class _Topic:
    name: str
    keywords: frozenset[str]
    text: str


TOPICS = (
    _Topic("states", frozenset({"state", "states", "status", "stage",
                                "stages", "step", "steps", "waiting"}),
           "Every scan passes five stages: " + "; ".join(
               f"\u201c{DESCRIPTIONS[s]}\u201d" for s in ScanState) + ". Only the last "
           "one gives you a report."),
    _Topic("time", frozenset({"long", "time", "when", "days", "hours", "soon", "wait",
                              "quick", "fast", "slow"}),
           "Most scans are reported within one to two working days. The AI analysis takes "
           "seconds; the reviews by a doctor, a pharmacist and an administrator happen in "
           "working hours. You get an e-mail as soon as your report is released."),
    _Topic("uncertain", frozenset({"uncertain", "unsure", "unclear", "confidence",
                                   "confident", "inconclusive"}),
           "\u201cUncertain\u201d means the computer program was not confident enough to "
           "suggest a finding. It is not a diagnosis and not bad news: a doctor always looks "
           "at your scan and writes the finding in your report either way."),
    _Topic("report", frozenset({"report", "read", "pdf", "download", "result", "results",
                                "finding", "understand", "prescription", "medicine"}),
           "Your report is a PDF. The doctor's finding and notes are the medical result; the "
           "AI's suggestion is listed for transparency and was checked by the doctor. Any "
           "prescriptions show the medicine, dose, how and how often to take it, and for how "
           "long. Download it from \u201cMy scans\u201d once it is released, and ask your "
           "doctor if anything is unclear."),
    _Topic("upload", frozenset({"upload", "file", "format", "jpeg", "jpg", "png", "dicom",
                                "size", "big", "large", "send", "photo"}),
           "You can upload a JPEG, PNG or DICOM file of your chest scan, up to the size shown "
           "above the upload form. Use the original file from the hospital or imaging centre "
           "rather than a photo of a screen."),
    _Topic("privacy", frozenset({"privacy", "private", "who", "see", "share", "data",
                                 "secure", "safe"}),
           "Only the hospital staff who work on your scan (a doctor, a pharmacist and an "
           "administrator) can see it, and every access is recorded. Other patients never "
           "see your data."),
    _Topic("ai", frozenset({"ai", "computer", "machine", "model", "algorithm",
                            "automatic"}),
           "A computer program suggests a first reading of the scan to help the doctor. "
           "Nothing reaches you until a doctor has checked it and a pharmacist and an "
           "administrator have approved the report."),
)

FALLBACK = ("I can answer questions about what the stages of a scan mean, how long it "
            "takes, what \u201cUncertain\u201d means, how to read your report, which files you "
            "can upload, and who can see your data. Ask \u201cwhere is my scan?\u201d to hear "
            "about your own scans. For anything medical, please ask your doctor.")

_MY_SCAN = re.compile(r"\bmy\s+(scans?|x-?rays?|images?|reports?|results?)\b|\bwhere\b.*\bscan")


def answer(question: str, scans: Sequence[ScanStatus]) -> Answer:
    """Answer a patient's question; "my scan" questions are answered from `scans`."""
    text = question.strip().lower()
    if not text:
        return Answer("help", FALLBACK)
    if _MY_SCAN.search(text):
        return Answer("my-scan", _about_own_scans(scans))
    words = set(re.findall(r"[a-z]+", text))
    best = max(TOPICS, key=lambda topic: len(topic.keywords & words))
    if not best.keywords & words:
        return Answer("help", FALLBACK)
    return Answer(best.name, best.text)


def _about_own_scans(scans: Sequence[ScanStatus]) -> str:
    if not scans:
        return "You have not uploaded a scan yet. Use the upload form on this page."
    latest = max(scans, key=lambda s: s.uploaded)
    words = DESCRIPTIONS.get(latest.state, latest.state)
    text = (f"Your latest scan, uploaded on {latest.uploaded:%d %B %Y}, is at this stage: "
            f"{words}.")
    if latest.state == ScanState.REPORT_READY:
        text += " You can download the report from \u201cMy scans\u201d."
    else:
        text += " You will get an e-mail when the report is released."
    ready = sum(1 for s in scans if s.state == ScanState.REPORT_READY)
    if len(scans) > 1:
        text += f" You have {len(scans)} scans in total; {ready} with a released report."
    return text
