"""Findings in words a patient can read: what each one means and what happens next.

One table, used by the patient's report page, the PDF and the help assistant, so that a
patient reads the same explanation everywhere. A doctor may write any finding (up to 100
characters); one that is not in the table is shown as written, with a general explanation
that sends the patient to the doctor rather than guessing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from csss_fhir.wording import readable


@dataclass(frozen=True)
class Explanation:
    """A finding for a patient: its plain name, what it means, and the next steps."""

    name: str
    meaning: str
    next_steps: str


_TREATMENT = ("Take any medicines in this report exactly as written, until the course is "
              "finished, even when you feel better. ")
_WORSE = ("If your breathing gets worse, your lips turn blue, or you have chest pain, call "
          "the emergency number at once.")

FINDINGS: dict[str, Explanation] = {
    "normal": Explanation(
        "No sign of lung infection",
        "The doctor found no sign of pneumonia or another lung problem on this X-ray.",
        "No treatment is needed for your lungs because of this X-ray. If you still feel "
        "unwell, or new symptoms start, contact your doctor. " + _WORSE),
    "bacterial pneumonia": Explanation(
        "Pneumonia caused by bacteria",
        "Pneumonia is an infection of the lungs. The X-ray shows signs that fit an "
        "infection caused by bacteria, which is usually treated with antibiotics.",
        _TREATMENT + "Rest and drink plenty of fluids. Your doctor may ask for a check-up "
        "or another X-ray in a few weeks. " + _WORSE),
    "viral pneumonia": Explanation(
        "Pneumonia caused by a virus",
        "Pneumonia is an infection of the lungs. The X-ray shows signs that fit an "
        "infection caused by a virus. Antibiotics do not work against viruses; most people "
        "get better with rest, fluids and medicine for fever or pain.",
        _TREATMENT + "Rest and drink plenty of fluids. " + _WORSE),
    "covid": Explanation(
        "Lung changes that fit COVID-19",
        "The X-ray shows changes in the lungs that fit an infection with the coronavirus "
        "that causes COVID-19.",
        _TREATMENT + "Follow your doctor's advice on testing and on staying away from "
        "others. Rest and drink plenty of fluids. " + _WORSE),
    "lung opacity": Explanation(
        "An area of the lung that looks denser than normal",
        "Part of the lung looks whiter than usual on the X-ray. This has many possible "
        "causes, such as an infection, fluid or scarring; your doctor's notes say what "
        "they think it is.",
        "Your doctor will explain the cause and may ask for more tests or a follow-up "
        "X-ray. " + _WORSE),
    "not assessable": Explanation(
        "The image could not be assessed",
        "The image could not be read reliably: it may not be a chest X-ray, it may be too "
        "small or unclear, or the file may be damaged.",
        "Upload the original X-ray file from the hospital or imaging centre (not a photo "
        "of a screen), or ask the hospital to send it."),
    "uncertain": Explanation(
        "No clear suggestion",
        "The computer program was not confident enough to suggest a finding. This is not "
        "bad news: a doctor looked at your X-ray and wrote the finding.",
        "Read the doctor's finding; it is the result."),
}

_ALIASES = {"covid 19": "covid", "covid19": "covid", "no finding": "normal",
            "pneumonia bacterial": "bacterial pneumonia",
            "pneumonia viral": "viral pneumonia"}

RETURNED = Explanation(
    "A new image is needed",
    "The doctor could not use the image you sent and returned it; the reason is shown "
    "with the scan.",
    "Upload a new image of your chest X-ray, ideally the original file from the hospital "
    "or imaging centre. Call the hospital if you are unsure which file to send.")


def key(finding: str) -> str:
    """The table key of a finding: "Bacterial_Pneumonia" and "bacterial pneumonia" alike."""
    text = re.sub(r"[\s_\-]+", " ", finding.strip().lower())
    return _ALIASES.get(text, text)


def words(label: str) -> str:
    """A class name as words, never the internal code (one rule: `wording.readable`)."""
    return readable(label)


def explain(finding: str) -> Explanation:
    """What `finding` means for the patient; a general text for a finding not in the table."""
    known = FINDINGS.get(key(finding))
    if known is not None:
        return known
    return Explanation(
        words(finding),
        "This is the doctor's finding, in medical words. Your doctor can explain what it "
        "means for you.",
        "Ask your doctor or call the hospital about what happens next. " + _WORSE)
