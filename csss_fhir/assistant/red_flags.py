"""Red-flag symptoms: does a patient's message describe an emergency?

Checked before anything else, on every message. A match is deliberately generous:

- The text is normalised (case, accents, apostrophes, punctuation), so "Can't BREATHE!!"
  and "cant breathe" read the same.
- Each phrase is a handful of words that must all occur, in any order, within a few words
  of each other ("chest pain", "pain in my chest", "my chest is so tight").
- Each word matches fuzzily (difflib's ratio, same first letter), so common misspellings
  ("chset pain", "cant breth", "siezure") still count. Short words must match exactly: a
  one-letter slip in "fit" or "ill" is another word.
- Negation is not a reason to skip: "I am not sure but my chest hurts" is an emergency
  message, and so, on purpose, is "I don't think I have chest pain". Telling a patient to
  call for help when they did not need to costs a minute; the opposite can cost a life.

The phrase list is clinical content: add phrasings here, with a test row for each.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

# Word lists combined into phrases below: every pairing of a body part with a complaint.
_CHEST = ("chest", "breastbone", "sternum")
_CHEST_COMPLAINTS = ("pain", "pains", "painful", "hurts", "hurt", "hurting", "ache", "aching",
                     "pressure", "tight", "tightness", "crushing", "squeezing", "heavy",
                     "heaviness", "burning", "stabbing", "sore", "killing")
_CHILD = ("baby", "babies", "infant", "newborn", "toddler", "child", "kid", "son",
          "daughter", "boy", "girl", "grandchild")
_FEVER = ("fever", "feverish", "temperature", "temp", "febrile", "hot", "burning")
_BLUE = ("blue", "bleu", "grey", "gray", "purple", "bluish", "blueish", "greyish", "pale")
_SKIN = ("lips", "lip", "face", "tongue", "mouth", "skin", "fingers", "fingertips", "nails")
_BLOOD_FROM = ("coughing", "cough", "coughed", "coughs", "spitting", "spit", "spat",
               "vomiting", "vomit", "throwing", "bringing", "sputum", "phlegm", "mucus")
_BLOOD = ("blood", "bloody", "bleeding")
_SWELLING = ("swelling", "swollen", "swells", "puffy")
_SWOLLEN_PARTS = ("throat", "tongue", "lips", "lip", "face", "mouth", "eyes")
_BREATHE = ("breathe", "breath", "breathing")
_CANNOT = ("cant", "cannot", "unable", "hard", "difficult", "difficulty", "trouble",
           "struggling", "struggle", "problem", "problems", "hardly", "barely")
_HURTS = ("hurts", "hurt", "painful", "pain", "sore")
_WAKE = ("wake", "waking", "wakeup", "rouse", "respond", "responding")

_SINGLE_WORDS = (
    "breathless", "breathlessness", "suffocating", "suffocate", "choking", "gasping",
    "fainted", "fainting", "collapsed", "collapse", "collapsing", "blackout",
    "unconscious", "unresponsive", "seizure", "seizures", "siezure", "seizing",
    "convulsion", "convulsions", "convulsing", "fitting", "epileptic", "anaphylaxis",
    "anaphylactic", "epipen", "suicidal", "suicide", "overdose", "overdosed", "cyanosis",
    "cyanotic", "haemoptysis", "hemoptysis", "confusion", "delirious", "disoriented",
    "drowsy", "stroke", "drowning",
)

_PHRASES = (
    *((part, complaint) for part in _CHEST for complaint in _CHEST_COMPLAINTS),
    *((child, fever) for child in _CHILD for fever in _FEVER),
    *((colour, skin) for colour in _BLUE for skin in _SKIN if colour != "pale"),
    ("turning", "blue"), ("turned", "blue"), ("going", "blue"), ("went", "blue"),
    ("pale", "lips"),
    *((source, blood) for source in _BLOOD_FROM for blood in _BLOOD),
    ("blood", "in", "sputum"), ("blood", "when", "cough"),
    *((swelling, part) for swelling in _SWELLING for part in _SWOLLEN_PARTS),
    *((cannot, breathe) for cannot in _CANNOT for breathe in _BREATHE),
    *((hurts, breathe) for hurts in _HURTS for breathe in _BREATHE),
    *((breathe, "worse") for breathe in _BREATHE),
    ("cant", "get", "air"), ("enough", "air"), ("wheezing", "air"), ("wheezing", "breath"),
    ("can", "not", "breathe"), ("short", "breath"), ("shortness", "breath"),
    ("out", "of", "breath"), ("catch", "breath"), ("gasping", "air"), ("air", "hunger"),
    ("breathing", "fast"), ("fast", "breathing"), ("rapid", "breathing"),
    ("lips", "going", "blue"), ("blue", "around", "mouth"),
    ("heart", "attack"), ("racing", "heart"), ("heart", "racing"), ("heart", "pounding"),
    ("feel", "faint"), ("feeling", "faint"), ("going", "faint"),
    ("passed", "out"), ("passing", "out"), ("pass", "out"), ("blacked", "out"),
    ("black", "out"), ("keeled", "over"), ("fell", "unconscious"),
    ("hard", "wake"), *(("cant", wake) for wake in _WAKE), ("wont", "wake"),
    ("not", "waking"), ("not", "responding"), ("very", "sleepy"), ("very", "drowsy"),
    ("not", "making", "sense"), ("cant", "think"), ("suddenly", "confused"),
    ("very", "confused"), ("is", "confused"), ("seems", "confused"), ("became", "confused"),
    ("getting", "confused"), ("confused", "drowsy"), ("slurred", "speech"), ("face", "drooping"),
    ("not", "feeding"), *(("little", "one", fever) for fever in (*_FEVER, "40", "41")),
    ("high", "fever"), ("very", "high", "temperature"), ("fever", "40"), ("fever", "41"),
    ("fever", "39"), ("temperature", "40"), ("temperature", "41"),
    ("having", "fit"), ("had", "fit"), ("having", "fits"),
    ("allergic", "reaction"), ("severe", "allergy"), ("throat", "closing"),
    ("throat", "tight"), ("cant", "swallow"), ("hives", "breathing"),
    ("too", "many", "pills"), ("too", "many", "tablets"),
    ("kill", "myself"), ("end", "my", "life"), ("ending", "my", "life"),
    ("dont", "want", "live"), ("want", "live", "anymore"), ("take", "my", "life"),
    ("want", "to", "die"), ("wanna", "die"), ("self", "harm"), ("hurt", "myself"),
    ("better", "off", "dead"), ("no", "reason", "to", "live"),
    ("severe", "pain"), ("worst", "pain"), ("cold", "clammy"), ("very", "unwell"),
)

# How far apart a phrase's words may be: its own length plus this many other words.
WINDOW_SLACK = 3
# A fuzzy word match needs this ratio; a phrase of one word, with no second word to confirm
# the context, needs the stricter one ("breathe" is 0.82 like "breathless", and harmless).
WORD_RATIO = 0.8
SINGLE_WORD_RATIO = 0.88
EXACT_BELOW = 4  # words shorter than this match only exactly


@dataclass(frozen=True)
class RedFlag:
    """The phrase found, as written in the list (for tests and counting, never logged)."""

    phrase: tuple[str, ...]


def normalise(text: str) -> list[str]:
    """Lower-case words without accents or punctuation; "can't" becomes "cant"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    plain = re.sub(r"['\u2019\u2018`´]", "", plain)
    return re.findall(r"[a-z]+|\d+", plain)


def find_red_flag(text: str) -> RedFlag | None:
    """The first red-flag phrase `text` contains, or None."""
    words = normalise(text)
    if not words:
        return None
    for phrase in (*((word,) for word in _SINGLE_WORDS), *_PHRASES):
        if _contains(words, phrase):
            return RedFlag(phrase)
    return None


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    ratio = SINGLE_WORD_RATIO if len(phrase) == 1 else WORD_RATIO
    positions = [[i for i, word in enumerate(words) if matches_word(word, wanted, ratio)]
                 for wanted in phrase]
    if not all(positions):
        return False
    if len(phrase) == 1:
        return True
    window = len(phrase) + WINDOW_SLACK
    # Any choice of one position per word that fits in the window (phrases are short).
    for start in positions[0]:
        if all(any(abs(p - start) < window for p in found) for found in positions[1:]):
            spread = [start] + [min(found, key=lambda p: abs(p - start))
                                for found in positions[1:]]
            if max(spread) - min(spread) < window:
                return True
    return False


@lru_cache(maxsize=65_536)  # bounded: every new word a patient types adds entries
def matches_word(word: str, wanted: str, ratio: float = WORD_RATIO) -> bool:
    """Whether `word` is `wanted`, allowing a slip or two in words of four letters or more
    (same first letter, difflib ratio at least `ratio`)."""
    if word == wanted:
        return True
    if len(word) < EXACT_BELOW or len(wanted) < EXACT_BELOW or word[0] != wanted[0]:
        return False
    matcher = SequenceMatcher(None, word, wanted)
    return matcher.real_quick_ratio() >= ratio and matcher.ratio() >= ratio
