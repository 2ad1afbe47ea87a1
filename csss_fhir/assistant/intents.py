"""What a patient's message asks about: one intent per message, red flags first.

The order of `classify` is the safety order: an emergency beats everything, a medicine
question beats a report question ("can I stop antibiotics when I feel better?" is about
the medicine, not about time), and anything not recognised gets the menu.
"""

from __future__ import annotations

import enum
import re

from csss_fhir.assistant.red_flags import find_red_flag, matches_word, normalise


class Intent(enum.StrEnum):
    EMERGENCY = "emergency"
    MEDICATION = "medication"
    PERSON = "person"
    PRIVACY = "privacy"
    DIAGNOSIS = "diagnosis"
    MEANING = "meaning"
    UNCERTAIN = "uncertain"
    REPORT_STATUS = "report-status"
    READING = "reading"
    STATES = "states"
    TIME = "time"
    UPLOAD = "upload"
    AI = "ai"
    HELP = "help"


FUZZY_FROM = 7  # medicine words at least this long match misspelled
_MEDICINE_WORDS = frozenset({
    "antibiotic", "antibiotics", "medicine", "medicines", "medication", "medications",
    "tablet", "tablets", "pill", "pills", "capsule", "capsules", "dose", "doses", "dosage",
    "drug", "drugs", "prescription", "prescriptions", "prescribed", "inhaler", "syrup",
    "amoxicillin", "amoxicilin", "penicillin", "azithromycin", "clarithromycin",
    "doxycycline", "paracetamol", "acetaminophen", "ibuprofen", "oseltamivir", "tamiflu",
    "paxlovid", "salbutamol", "prednisolone", "pharmacist", "pharmacy", "calpol", "nurofen",
    "tylenol", "advil", "motrin", "aspirin", "cefuroxime", "ventolin", "steroids",
})
_MEDICINE_PHRASES = re.compile(
    r"\bside ?effects?\b|\bstop taking\b|\bmissed? a\b|\bhow (much|many|often) (should|do|can)"
    r"\b|\bwith (food|alcohol)\b|\binteract|\b(finish|complete) (the|my|this) course\b")
_PERSON = re.compile(
    r"\b(talk|speak|chat) (to|with)\b|\b(real|a) (person|human)\b|\bhuman\b|\bsomeone\b"
    r"|\bsomebody\b|\bcall (you|the hospital|someone)\b|\bcontact\b|\bnurse\b"
    r"|\bphone (number|you|someone|somebody|the hospital|me)\b|\b(by|on the) phone\b"
    r"|\bnumber\b.*\bcall\b|\bcall\b.*\bnumber\b"
    r"|\bcomplain|\bcall me\b|\bappointment\b")
_PRIVACY = re.compile(
    r"\bprivacy\b|\bprivate\b|\bconfidential|\bgdpr\b|\bhipaa\b|\bwho (can|could|will) "
    r"(see|read|access|look)|\bshare[ds]?\b|\bsharing\b|\bsecure\b|\bsecurity\b"
    r"|\bcan (?!i\b)\w+( \w+)? (see|read|access|view)\b"  # "can my husband see"
    r"|\bmy (data|information|details)\b|\bdelete\b|\bsell\b|\bemployer\b|\binsurance\b"
    r"|\bstor(e|ed|es|ing)\b|\bforever\b|\bretain|\bretention\b")
_DIAGNOSIS = re.compile(
    r"\bdiagnos[ie]s\b|\bdiagnose[ds]?\b|\bdiagnosing\b|\btrust\b|\baccurate\b|\baccuracy\b"
    r"|\breplace (my|the|a) doctor\b|\bai (doctor|decide)|\bis (it|this|that) (right|correct|"
    r"final)\b|\bsecond opinion\b|\bwrong\b|\bmistakes?\b|\breliable\b")
_MEANING = re.compile(
    r"\b(pneumonia|covid|coronavirus|opacity|opacities|assessable)\b")
_ASKS_MEANING = re.compile(r"\bwhat (does|do|is) .*\bmean\b|\bmeaning\b")
_UPLOAD = re.compile(r"\b(upload|uploading|reupload)\b|\b(send|take|use) (another|a new"
                     r"|a better|a clearer) (photo|picture|image|file|scan|x ray)\b")
_STATUS = re.compile(
    r"\b(where|when|ready|status|yet|still|done|finished|arrive|progress|update)\b"
    r"|\bhow long\b|\bwaiting\b")
_OWN_THING = re.compile(r"\b(report|reports|result|results|scan|scans|xray|xrays|x ray"
                        r"|image|images|pdf)\b")
_READING = re.compile(r"\b(read|understand|download|open|print|explain|pdf)\b")
_TOPIC_WORDS: tuple[tuple[Intent, frozenset[str]], ...] = (
    (Intent.UNCERTAIN, frozenset({"uncertain", "unsure", "unclear", "confidence",
                                  "confident", "inconclusive"})),
    (Intent.STATES, frozenset({"state", "states", "stage", "stages", "step", "steps"})),
    (Intent.TIME, frozenset({"long", "time", "days", "hours", "soon", "wait", "quick",
                             "fast", "slow", "when"})),
    (Intent.UPLOAD, frozenset({"upload", "uploading", "file", "format", "jpeg", "jpg", "png",
                               "dicom", "size", "big", "large", "send", "photo"})),
    (Intent.AI, frozenset({"ai", "computer", "machine", "model", "algorithm", "automatic",
                           "artificial", "intelligence", "program"})),
)


def classify(message: str) -> Intent:
    """The one intent of `message` (red flags first; the menu when nothing fits)."""
    if find_red_flag(message) is not None:
        return Intent.EMERGENCY
    words = normalise(message)
    if not words:
        return Intent.HELP
    text = " ".join(words)
    if _is_medication(words, text):
        return Intent.MEDICATION
    if _PERSON.search(text):
        return Intent.PERSON
    if _PRIVACY.search(text):
        return Intent.PRIVACY
    if _DIAGNOSIS.search(text):
        return Intent.DIAGNOSIS
    if "uncertain" in words:
        return Intent.UNCERTAIN
    if _ASKS_MEANING.search(text) or (_MEANING.search(text) and not _STATUS.search(text)):
        return Intent.MEANING
    if _UPLOAD.search(text):
        return Intent.UPLOAD
    if _OWN_THING.search(text):
        if _READING.search(text):
            return Intent.READING
        if _STATUS.search(text) or re.search(r"\bmy\b", text):
            return Intent.REPORT_STATUS
    present = set(words)
    best, best_words = max(_TOPIC_WORDS, key=lambda topic: len(topic[1] & present))
    if best_words & present:
        return best
    return Intent.HELP


def _is_medication(words: list[str], text: str) -> bool:
    if _MEDICINE_PHRASES.search(text):
        return True
    # Fuzzy only for long names ("amoxicilin"): a short one is too close to common words
    # ("dose" and "does").
    return any(word == wanted or (len(wanted) >= FUZZY_FROM and matches_word(word, wanted))
               for word in words for wanted in _MEDICINE_WORDS)
