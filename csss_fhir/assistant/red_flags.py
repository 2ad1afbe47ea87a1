"""Red-flag symptoms: does a patient's message describe an emergency?

Checked before anything else, on every message. A match is deliberately generous:

- The text is normalised (case, accents, apostrophes, punctuation), so "Can't BREATHE!!"
  and "cant breathe" read the same.
- Each phrase is a handful of words that must all occur, in any order, within a few words
  of each other ("chest pain", "pain in my chest", "my chest is so tight").
- Each word matches fuzzily (difflib's ratio, same first letter), so common misspellings
  ("chset pain", "cant breth", "siezure") still count. Short words must match exactly: a
  one-letter slip in "fit" or "ill" is another word.
- Temperatures are read as numbers ("104F", "39.8C", "a temp of 39,6") and compared with
  the threshold for whom the message is about (`temperature`): a baby, a child, anybody.
  A number below it answers "my 10 year old has a temperature of 38" without alarm; a
  child's fever without a number is a red flag.
- Negation is not a reason to skip: "I am not sure but my chest hurts" is an emergency
  message, and so, on purpose, is "I don't think I have chest pain". Telling a patient to
  call for help when they did not need to costs a minute; the opposite can cost a life.
- The one thing let go is a symptom told as weeks or more in the past and not as present
  ("my child had a fever last week, is the report ready?"); `clauses` says how narrowly.

The phrase lists are clinical content: add phrasings here, with a test row for each
(tests/unit/assistant/heldout.csv holds messages written before the lists were widened).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache
from itertools import accumulate

from csss_fhir.assistant import clauses, temperature

# Word lists combined into phrases below: every pairing of a body part with a complaint.
_CHEST = ("chest", "chests", "breastbone", "sternum")
_CHEST_COMPLAINTS = ("pain", "pains", "painful", "hurts", "hurt", "hurting", "ache", "aching",
                     "pressure", "tight", "tightness", "tightening", "crushing", "crushed",
                     "squeezing", "squeezed", "heavy", "heaviness", "weight", "elephant",
                     "burning", "stabbing", "sore", "killing", "band", "gripping",
                     "pressing", "discomfort", "agony", "excruciating", "clutching",
                     "clenching")
_CHILD = ("baby", "babies", "infant", "newborn", "toddler", "child", "kid", "son",
          "daughter", "boy", "girl", "grandchild", "grandson", "granddaughter", "lo", "yo")
_FEVER = ("fever", "feverish", "temperature", "temp", "febrile", "hot", "burning")
_BLUE = ("blue", "bleu", "grey", "gray", "purple", "purplish", "bluish", "blueish",
         "bluey", "greyish", "grayish", "dusky", "ashen", "pale")
_SKIN = ("lips", "lip", "face", "tongue", "mouth", "skin", "fingers", "fingertips", "finger",
         "nails", "fingernails", "toes", "hands", "feet", "gums")
_BLOOD_FROM = ("coughing", "cough", "coughed", "coughs", "spitting", "spit", "spat",
               "vomiting", "vomit", "vomited", "vomitted", "throwing", "threw", "puking",
               "puked", "bringing", "sputum", "phlegm", "mucus", "spew")
_BLOOD = ("blood", "bloody", "bleeding")
_SWELLING = ("swelling", "swollen", "swells", "puffy", "swelled")
_SWOLLEN_PARTS = ("throat", "tongue", "lips", "lip", "face", "mouth", "eyes")
_BREATHE = ("breathe", "breath", "breathing", "breaths", "breathes")
_CANNOT = ("cant", "cannot", "unable", "hard", "difficult", "difficulty", "trouble",
           "struggling", "struggle", "problem", "problems", "hardly", "barely", "fighting")
_NOT = ("not", "isnt", "wont", "doesnt", "cant", "no", "unable", "arent", "didnt", "stopped")
_HURTS = ("hurts", "hurt", "painful", "pain", "sore")
_WAKE = ("wake", "waking", "wakeup", "rouse", "respond", "responding", "responsive",
         "moving", "recognise", "recognize", "recognising", "recognizing")
_SOMEONE = ("he", "she", "hes", "shes", "him", "her", "mum", "mom", "mother", "dad",
            "father", "husband", "wife", "partner", "nan", "nana", "gran", "granny",
            "grandma", "grandad", "granddad", "grandpa", "son", "daughter", "baby", "child")
_MUDDLED = ("confused", "muddled", "disorientated", "disoriented", "delirious", "rambling")
_FEED = ("feed", "feeding", "feeds", "bottle", "bottles", "breastfeed", "breastfeeding",
         "milk")
_DRY = ("nappy", "nappies", "diaper", "diapers")
_NO_URINE = ("peed", "pee", "weed", "wee", "urinated", "urine", "pissed")

_SINGLE_WORDS = (
    "breathless", "breathlessness", "suffocating", "suffocate", "choking", "choked",
    "gasping", "laboured", "labored", "grunting", "fainted", "fainting", "collapsed",
    "collapse", "collapsing", "blackout", "unconscious", "unresponsive", "limp", "floppy",
    "seizure", "seizures", "siezure", "seisure", "seizing", "convulsion", "convulsions",
    "convulsing", "fitting", "epileptic", "jerking", "anaphylaxis", "anaphylactic",
    "epipen", "adrenaline", "epinephrine", "suicidal", "suicide", "overdose", "overdosed",
    "kms", "unalive", "cyanosis", "cyanotic", "haemoptysis", "hemoptysis", "confusion",
    "delirious", "disoriented", "disorientated", "muddled", "gibberish", "drowsy",
    "stroke", "drooping", "droopy", "slurring", "thunderclap", "drowning", "mottled",
    "blotchy", "rigors", "fontanelle", "fontanel", "haemorrhage", "hemorrhage", "spurting",
    "hallucinating", "hallucinations", "hallucination",
)

_PHRASES = (
    # breathing: effort, air, not breathing at all
    *((part, complaint) for part in _CHEST for complaint in _CHEST_COMPLAINTS),
    *((colour, skin) for colour in _BLUE for skin in _SKIN if colour != "pale"),
    *((change, colour) for change in ("turning", "turned", "going", "gone", "went")
      for colour in ("blue", "grey", "gray", "purple")), ("pale", "lips"),
    *((source, blood) for source in _BLOOD_FROM for blood in _BLOOD),
    ("blood", "in", "sputum"), ("blood", "when", "cough"), ("pink", "frothy"),
    ("frothy", "sputum"), ("pink", "phlegm"), ("pink", "sputum"), ("rusty", "sputum"),
    *((swelling, part) for swelling in _SWELLING for part in _SWOLLEN_PARTS),
    *((cannot, breathe) for cannot in _CANNOT for breathe in _BREATHE),
    *((cannot, "air") for cannot in _CANNOT),
    *((hurts, breathe) for hurts in _HURTS for breathe in _BREATHE),
    *((stop, breathe) for stop in _NOT for breathe in ("breathing", "breathe")),
    *((breathe, "worse") for breathe in _BREATHE),
    ("pausing", "breathing"), ("pauses", "breathing"), ("stops", "breathing"),
    ("cant", "get", "air"), ("enough", "air"), ("wheezing", "air"), ("wheezing", "breath"),
    ("struggling", "for", "air"), ("gasping", "air"), ("air", "hunger"),
    ("can", "not", "breathe"), ("short", "breath"), ("shortness", "breath"),
    ("out", "of", "breath"), ("catch", "breath"), ("breathing", "fast"),
    ("fast", "breathing"), ("rapid", "breathing"), ("noisy", "breathing"),
    ("breathing", "noisy"), ("breathing", "heavily"), ("panting", "breath"),
    *((wheeze, "cant") for wheeze in ("wheezy", "wheezing", "wheeze")),
    ("wheezing", "badly"), ("wheezing", "bad"), ("cant", "finish", "sentence"),
    *((effort, talk) for effort in ("barely", "hardly") for talk in ("speak", "talk")),
    ("breathing", "funny"), ("breathing", "weird"), ("breathing", "strange"),
    ("asthma", "attack"), ("asthma", "bad"), ("asthma", "worse"),
    *((no, "inhaler", helps) for no in ("not", "isnt", "doesnt", "wont", "no")
      for helps in ("helping", "help", "working", "work")), ("cant", "sentences"),
    ("full", "sentences"), ("too", "breathless", "talk"),
    ("ribs", "sucking"), ("ribs", "suck"), ("ribs", "pulling"), ("sucking", "in", "chest"),
    ("neck", "sucking"), ("tummy", "sucking"), ("nostrils", "flaring"),
    ("flaring", "nostrils"), ("stuck", "throat"), ("something", "stuck", "windpipe"),
    ("swallowed", "battery"),
    # heart
    ("lips", "going", "blue"), ("blue", "around", "mouth"),
    ("heart", "attack"), ("racing", "heart"), ("heart", "racing"), ("heart", "pounding"),
    ("left", "arm", "pain"), ("left", "arm", "numb"), ("left", "arm", "hurts"),
    ("arm", "jaw"), ("jaw", "arm"), ("sick", "sweaty"), ("sweaty", "clammy"),
    # fainting, not responding
    ("feel", "faint"), ("feeling", "faint"), ("going", "faint"), ("going", "to", "faint"),
    ("passed", "out"), ("passing", "out"), ("pass", "out"),
    ("blacked", "out"), ("black", "out"), ("keeled", "over"), ("fell", "unconscious"),
    ("hard", "wake"), *((no, wake) for no in _NOT for wake in _WAKE), ("wont", "wake"),
    ("very", "sleepy"), ("very", "drowsy"),
    # confusion, stroke
    ("not", "making", "sense"), ("cant", "think"), ("suddenly", "confused"),
    ("very", "confused"), ("seems", "confused"), ("became", "confused"),
    ("getting", "confused"), ("confused", "drowsy"), ("out", "of", "it"),
    *((person, muddled) for person in _SOMEONE for muddled in _MUDDLED),
    ("doesnt", "know", "where"), ("dont", "know", "where", "i", "am"),
    ("talking", "nonsense"), ("talking", "rubbish"), ("slurred", "speech"),
    ("speech", "slurred"), ("face", "drooping"), ("face", "droop"),
    ("weakness", "one", "side"), ("weak", "one", "side"), ("numb", "one", "side"),
    ("one", "side", "face"), ("cant", "lift", "arm"), ("arm", "weak"), ("weak", "arm"),
    ("words", "wrong"), ("cant", "speak", "properly"), ("cant", "talk", "properly"),
    ("suddenly", "speak"), ("suddenly", "talk"), ("cant", "get", "words", "out"),
    ("worst", "headache"), ("sudden", "headache"), ("headache", "suddenly"),
    ("severe", "headache"), ("stiff", "neck"),
    # children and babies (the fever pairs are _CHILD_FEVER, below)
    *((no, feed) for no in _NOT for feed in _FEED), ("refusing", "feeds"),
    ("refusing", "bottle"), ("soft", "spot"), ("little", "one", "40"), ("little", "one", "41"),
    ("high", "fever"), ("very", "high", "temperature"),
    # seizures
    ("having", "fit"), ("had", "fit"), ("having", "fits"), ("eyes", "rolled"),
    ("eyes", "rolling"), ("twitching", "stiff"), ("went", "stiff"), ("gone", "stiff"),
    ("shaking", "all", "over"),
    # allergy
    ("allergic", "reaction"), ("severe", "allergy"), ("throat", "closing"),
    ("throat", "tight"), ("cant", "swallow"), ("hives", "breathing"), ("epi", "pen"),
    # self-harm and suicide
    ("too", "many", "pills"), ("too", "many", "tablets"),
    ("kill", "myself"), ("kill", "my", "self"), ("end", "my", "life"),
    ("ending", "my", "life"), ("end", "it", "all"), ("ending", "it", "all"),
    ("ending", "things"), ("end", "things"), ("dont", "want", "live"),
    ("want", "live", "anymore"), ("take", "my", "life"), ("want", "to", "die"),
    ("wanna", "die"), ("wish", "dead"), ("self", "harm"), ("hurt", "myself"),
    ("hurting", "myself"), ("harm", "myself"), ("cut", "myself"), ("cutting", "myself"),
    ("better", "off", "dead"), ("better", "off", "without", "me"),
    ("no", "reason", "to", "live"), ("point", "living"), ("point", "in", "life"),
    ("not", "worth", "living"), ("going", "take", "all"), ("gonna", "take", "all"),
    ("swallow", "all", "my"), ("took", "all", "my"),
    *((took, "whole", pack) for took in ("took", "taken", "swallowed", "ate")
      for pack in ("pack", "packet", "box", "bottle", "strip")),
    # bleeding
    ("bleeding", "wont", "stop"), ("bleeding", "not", "stopping"), ("blood", "everywhere"),
    ("heavy", "bleeding"), ("bleeding", "heavily"), ("bleeding", "badly"),
    ("lot", "of", "blood"), ("losing", "blood"), ("pouring", "blood"),
    ("soaking", "blood"), ("soaking", "through"),
    # sepsis
    ("ice", "cold"), ("cold", "hands", "feet"), ("very", "cold", "hands"), ("icy", "hands"),
    ("icy", "feet"), ("freezing", "hands"), ("cold", "clammy"),
    ("shivering", "uncontrollably"), ("shaking", "uncontrollably"),
    ("uncontrollable", "shivering"), ("uncontrollable", "shaking"),
    *((no, urine) for no in ("not", "havent", "hasnt", "no", "hardly") for urine in _NO_URINE),
    *(("dry", nappy) for nappy in _DRY), ("rash", "fade"), ("rash", "glass"),
    ("rash", "press"), ("non", "blanching"), ("purple", "spots"), ("feel", "like", "dying"),
    ("im", "dying"), ("going", "to", "die"), ("very", "unwell"),
    ("severe", "pain"), ("worst", "pain"),
)
# A child with a fever: a red flag unless the message gives a temperature below the
# threshold for that child (then the number speaks, see `temperature`).
_CHILD_FEVER = tuple((child, fever) for child in _CHILD for fever in _FEVER) + tuple(
    ("little", "one", fever) for fever in _FEVER)

# How far apart a phrase's words may be: its own length plus this many other words, not
# counting the small words below ("heavy feeling in the centre of my chest" is 3 apart).
WINDOW_SLACK = 3
_SMALL_WORDS = frozenset({"a", "an", "the", "of", "in", "on", "at", "to", "up", "my", "his",
                          "her", "their", "our", "your", "its", "it", "is", "am", "are", "was",
                          "were", "been", "has", "have", "had", "and", "so", "very", "really",
                          "just", "quite"})
# Negations and other small words of phrases match only exactly ("does" is not "doesnt").
_EXACT_WORDS = frozenset({*_NOT, "dont", "havent", "hasnt", "cant", "cannot", "wont",
                          "taken"})  # "take the whole pack of antibiotics" is the course
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
    return clauses.words(clauses.plain(text))


def find_red_flag(text: str) -> RedFlag | None:
    """The first red flag in `text`, or None: a single word, a phrase, then a temperature
    (or, without a number, a child's fever)."""
    message = _Message(text)
    if not message.words:
        return None
    for phrase in _SINGLE_WORDS:
        if message.has((phrase,), SINGLE_WORD_RATIO):
            return RedFlag((phrase,))
    for phrase in _PHRASES:
        if message.has(phrase, WORD_RATIO):
            return RedFlag(phrase)
    limit = temperature.threshold(message.text, set(message.words))
    readings = [r for r in temperature.readings(message.clauses, set(message.words))
                if not message.let_go({r.clause})]
    if any(reading.celsius >= limit for reading in readings):
        return RedFlag(("temperature",))
    if readings:  # the number says whether a child's fever is a red flag
        return None
    for phrase in _CHILD_FEVER:
        if message.has(phrase, WORD_RATIO):
            return RedFlag(phrase)
    if limit < temperature.ANYONE_FEVER_C and any(  # a child named by age: "my 8 month old"
            temperature.FEVER_WORDS.intersection(clauses.words(clause))
            and not message.let_go({index}) for index, clause in enumerate(message.clauses)):
        return RedFlag(("child", "fever"))
    return None


class _Message:
    """A message's clauses and words, and where each phrase word occurs in them."""

    def __init__(self, text: str) -> None:
        self.text = clauses.plain(text)
        self.clauses = clauses.split(text)
        by_clause = [clauses.words(clause) for clause in self.clauses]
        # As written, except that "confused about the report" is puzzled.
        self.words = _puzzled([word for words in by_clause for word in words])
        self.clause_of = [index for index, words in enumerate(by_clause) for _ in words]
        self.recurred = clauses.recurred(text)
        # The rank of a word: how many words before it are not small words.
        self.rank = list(accumulate((word not in _SMALL_WORDS for word in self.words[:-1]),
                                    initial=0))
        self.loose: dict[str, list[int]] = defaultdict(list)
        self.strict: dict[str, list[int]] = defaultdict(list)
        for position, word in enumerate(self.words):
            loose, strict = _vocabulary_matches(word)
            for wanted in loose:
                self.loose[wanted].append(position)
            for wanted in strict:
                self.strict[wanted].append(position)

    def let_go(self, clause_indexes: set[int]) -> bool:
        """Whether a match in these clauses is about the distant past only."""
        return not self.recurred and all(clauses.distant_past(self.clauses[index])
                                         for index in clause_indexes)

    def has(self, phrase: tuple[str, ...], ratio: float) -> bool:
        """Whether the phrase's words occur near each other, about the present."""
        found = self.strict if ratio == SINGLE_WORD_RATIO else self.loose
        positions = [found.get(wanted) for wanted in phrase]
        if not all(positions):
            return False
        window = len(phrase) + WINDOW_SLACK
        # Any choice of one position per word that fits in the window (phrases are short).
        for start in positions[0]:
            spread = [start] + [min(places, key=lambda p: abs(p - start))
                                for places in positions[1:]]
            ranks = [self.rank[p] for p in spread]
            if max(ranks) - min(ranks) < window and not self.let_go(
                    {self.clause_of[p] for p in spread}):
                return True
        return False


_ABOUT = frozenset({"about", "by", "with"})
_A_THING = frozenset({"the", "my", "your", "this", "that", "these", "it", "how", "what", "why",
                      "which", "all"})


def _puzzled(words: list[str]) -> list[str]:
    """"Confused about the report" is puzzlement, not the symptom: say so."""
    return ["puzzled" if word == "confused" and words[i + 1:i + 2] and words[i + 1] in _ABOUT
            and words[i + 2:i + 3] and words[i + 2] in _A_THING else word
            for i, word in enumerate(words)]


def _phrase_words() -> dict[str, tuple[str, ...]]:
    """Every word the phrases use, grouped by first letter (a fuzzy match keeps it)."""
    by_letter: dict[str, set[str]] = defaultdict(set)
    for phrase in (*((word,) for word in _SINGLE_WORDS), *_PHRASES, *_CHILD_FEVER):
        for word in phrase:
            by_letter[word[0]].add(word)
    return {letter: tuple(sorted(words)) for letter, words in by_letter.items()}


_VOCABULARY = _phrase_words()


@lru_cache(maxsize=16_384)  # bounded: every new word a patient types adds an entry
def _vocabulary_matches(word: str) -> tuple[frozenset[str], frozenset[str]]:
    """The phrase words `word` matches: loosely (in a phrase) and strictly (alone)."""
    candidates = _VOCABULARY.get(word[0], ())
    loose = frozenset(w for w in candidates if matches_word(word, w, WORD_RATIO))
    strict = frozenset(w for w in loose if matches_word(word, w, SINGLE_WORD_RATIO))
    return loose, strict


@lru_cache(maxsize=65_536)  # bounded: every new word a patient types adds entries
def matches_word(word: str, wanted: str, ratio: float = WORD_RATIO) -> bool:
    """Whether `word` is `wanted`, allowing a slip or two in words of four letters or more
    (same first letter, difflib ratio at least `ratio`)."""
    if word == wanted:
        return True
    if wanted in _EXACT_WORDS or word[0] != wanted[0]:
        return False
    if len(word) < EXACT_BELOW or len(wanted) < EXACT_BELOW:
        return False
    matcher = SequenceMatcher(None, word, wanted)
    return matcher.real_quick_ratio() >= ratio and matcher.ratio() >= ratio
