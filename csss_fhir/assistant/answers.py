"""The assistant's answers: fixed words per intent, filled from the patient's own records.

An emergency answer stands alone: nothing else is added that could be read instead of it.
A medicine answer never says to stop; it sends the patient to the pharmacist or doctor and
lists only prescriptions that are active (a cancelled or corrected one is never shown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from csss_fhir.assistant.intents import Intent, classify
from csss_fhir.assistant.red_flags import normalise
from csss_fhir.patient_reports import ACTIVE, Medicine
from csss_fhir.reports import plain_language
from csss_fhir.workflow.states import DESCRIPTIONS, ScanState

# Characters read of one message. The form takes 500, but a longer one (pasted into the
# address) is still read for red flags: an emergency at its end must not be cut off.
MAX_MESSAGE = 2_000


@dataclass(frozen=True)
class ScanStatus:
    uploaded: datetime
    state: str


@dataclass(frozen=True)
class Contacts:
    """Who to call: the settings EMERGENCY_NUMBER, HOSPITAL_PHONE and HOSPITAL_NAME."""

    emergency_number: str
    hospital_phone: str
    hospital_name: str

    @property
    def hospital(self) -> str:
        if self.hospital_phone:
            return f"{self.hospital_name} on {self.hospital_phone}"
        return self.hospital_name


@dataclass(frozen=True)
class Answer:
    topic: str
    text: str
    items: tuple[str, ...] = ()  # a list shown under the text (the active prescriptions)

    @property
    def emergency(self) -> bool:
        return self.topic == Intent.EMERGENCY


def emergency_text(contacts: Contacts) -> str:
    """The emergency message, alone: also the line on every patient page."""
    return (f"This may be an emergency. Call {contacts.emergency_number} now, or go to the "
            f"nearest emergency department. Do not wait for your report or for an answer "
            f"here. If you are not sure, call {contacts.hospital} straight away.")


_FIXED = {
    Intent.PRIVACY: (
        "Only the hospital staff who work on your scan (a doctor, a pharmacist and an "
        "administrator) can see it, and every access is recorded. Other patients never see "
        "your data, and it is not shared with anyone outside your care."),
    Intent.DIAGNOSIS: (
        "The computer program's suggestion is not a diagnosis. Your result is the doctor's "
        "finding in the released report: a doctor looked at your X-ray and wrote it, and a "
        "pharmacist and an administrator checked the report before it reached you. Your "
        "doctor puts it together with your symptoms and examination; ask them what it "
        "means for you."),
    Intent.UNCERTAIN: (
        "\u201cUncertain\u201d means the computer program was not confident enough to "
        "suggest a finding. It is not a diagnosis and not bad news: a doctor always looks "
        "at your scan and writes the finding in your report either way."),
    Intent.READING: (
        "Open the report from \u201cYour scans\u201d once it is released. The doctor's "
        "finding comes first, in plain words, with what it means and the next steps; the "
        "computer program's suggestion comes second, labelled as reviewed by the doctor. "
        "You can also download it as a PDF. Ask your doctor if anything is unclear."),
    Intent.STATES: (
        "Every scan passes five stages: " + "; ".join(
            f"\u201c{DESCRIPTIONS[s]}\u201d" for s in ScanState) + ". Only the last one "
        "gives you a report."),
    Intent.TIME: (
        "Most scans are reported within one to two working days. The AI analysis takes "
        "seconds; the reviews by a doctor, a pharmacist and an administrator happen in "
        "working hours. You get an e-mail as soon as your report is released."),
    Intent.UPLOAD: (
        "You can upload a JPEG, PNG or DICOM file of your chest X-ray, up to the size shown "
        "above the upload form. Use the original file from the hospital or imaging centre "
        "rather than a photo of a screen."),
    Intent.AI: (
        "A computer program suggests a first reading of the X-ray to help the doctor. "
        "Nothing reaches you until a doctor has checked it and a pharmacist and an "
        "administrator have approved the report."),
}

MENU = ("I can help with: where your scan or report is, how long it takes, how to read "
        "your report, what a finding means, your medicines, who can see your data, and how "
        "to talk to a person. For anything about your health, ask your doctor.")


def answer(message: str, scans: Sequence[ScanStatus], medicines: Sequence[Medicine],
           contacts: Contacts) -> Answer:
    """Answer one message: an emergency alone, else the intent's answer."""
    message = message[:MAX_MESSAGE]
    intent = classify(message)
    if intent is Intent.EMERGENCY:
        return Answer(intent, emergency_text(contacts))
    if intent is Intent.MEDICATION:
        return _medication(medicines, contacts)
    if intent is Intent.PERSON:
        return Answer(intent, f"To talk to a person, call {contacts.hospital}. In an "
                              f"emergency call {contacts.emergency_number}.")
    if intent is Intent.MEANING:
        return Answer(intent, _meaning(message))
    if intent is Intent.REPORT_STATUS:
        return Answer(intent, _about_own_scans(scans))
    if intent in _FIXED:
        return Answer(intent, _FIXED[intent])
    return Answer(Intent.HELP, MENU)


def _medication(medicines: Sequence[Medicine], contacts: Contacts) -> Answer:
    text = ("Please ask the pharmacist or your doctor: call "
            f"{contacts.hospital} and ask for the pharmacist. Do not stop, skip or change a "
            "medicine on your own, even when you feel better: an antibiotic stopped early "
            "can let the infection come back.")
    active = tuple(_line(m) for m in medicines if m.status == ACTIVE)
    if active:
        text += " Your active prescriptions:"
    else:
        text += " You have no active prescriptions in your released reports."
    return Answer(Intent.MEDICATION, text, active)


def _line(medicine: Medicine) -> str:
    """"Amoxicillin 500 mg, oral, three times a day, for 7 days"."""
    parts = [medicine.name + (f" {medicine.dose}" if medicine.dose else "")]
    parts += [p for p in (medicine.route, medicine.frequency) if p]
    if medicine.duration:
        parts.append(f"for {medicine.duration}")
    return ", ".join(parts)


def _meaning(message: str) -> str:
    text = " ".join(normalise(message))
    for key in sorted(plain_language.FINDINGS, key=len, reverse=True):
        if key in text:
            found = plain_language.FINDINGS[key]
            return f"{found.name}: {found.meaning} {found.next_steps}"
    if "pneumonia" in text:
        return ("Pneumonia is an infection of the lungs, caused by bacteria or a virus. "
                "Your report says which one your doctor found and what to do next.")
    return ("Open your released report from \u201cYour scans\u201d: it explains the doctor's "
            "finding in plain words, what it means and the next steps. Your doctor can "
            "tell you what it means for you.")


def _about_own_scans(scans: Sequence[ScanStatus]) -> str:
    if not scans:
        return "You have not uploaded a scan yet. Use the upload form on this page."
    latest = max(scans, key=lambda s: s.uploaded)
    words = DESCRIPTIONS.get(latest.state, latest.state)
    text = (f"Your latest scan, uploaded on {latest.uploaded:%d %B %Y}, is at this stage: "
            f"{words}.")
    if latest.state == ScanState.REPORT_READY:
        text += " Open the report from \u201cYour scans\u201d on this page."
    else:
        text += (" Most scans are reported within one to two working days; you will get an "
                 "e-mail when the report is released.")
    ready = sum(1 for s in scans if s.state == ScanState.REPORT_READY)
    if len(scans) > 1:
        text += f" You have {len(scans)} scans in total; {ready} with a released report."
    return text
