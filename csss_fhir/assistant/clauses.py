"""A message in clauses, and whether a clause is about the distant past.

Red flags are read in the whole message, but a symptom that is weeks, months or years
behind the patient ("my child had a fever last week, is the report ready?", "my dad had a
stroke years ago") is not an emergency now. Only that is let go, and narrowly:

- The clause must name a time at least a week back ("last week", "two months ago", "as a
  child", "in 2019"). Yesterday, last night or three days ago are not far enough: a faint
  or chest pain that recently passed still needs help today, so "it's gone" alone is not.
- Nothing in the same clause may say that it is still going on ("since last week", "for
  the last month", "has a fever like last week", "still", "now", "hurts"), and nothing in
  the message may say that it came back ("again", "it's back", "worse").

Clauses end at punctuation and before words that start a new thought ("but", "now",
"when", "also", ...), so "I had a seizure years ago, now my chest hurts" keeps the chest
pain in a clause of its own. When in doubt the symptom counts as present.
"""

from __future__ import annotations

import re
import unicodedata

# Punctuation that ends a clause; a point or comma between digits is a decimal ("39,6").
_CLAUSE_END = re.compile(r"[!?;:\n()\[\]\"]+|(?<!\d)[.,]|[.,](?!\d)|\s[-\u2013\u2014]+\s")
# Words that start a new clause (kept as words of the message).
_BEFORE_STARTER = re.compile(r"(?<=[^a-z0-9])(?=(?:but|however|although|though|also|btw"
                             r"|anyway|now|when|where|what|how|who|why|plus)\b)")

_DISTANT = re.compile(
    r"\b(?:(?:a|one|two|three|four|five|six|few|several|couple of|many|\d+) )?"
    r"(?:weeks?|months?|years?) (?:ago|back)\b"
    r"|(?<!\bsince )(?<!\bfor )(?<!\bthe )(?<!\bover )(?<!\bpast )(?<!\ball )(?<!\bin )"
    r"(?<!\bduring )\blast (?:week|month|year|winter|summer|spring|autumn|fall|christmas)\b"
    r"|\bas an? (?:child|kid|baby|toddler|teenager|teen|adult)\b"
    r"|\bwhen (?:i|he|she|they) (?:was|were) (?:little|young|younger|small|\d+"
    r"|an? (?:child|kid|baby|toddler|teenager|teen))\b"
    r"|\bin (?:19|20)\d\d\b")
# Words that say the symptom is present or ongoing in this clause. "has gone" is the
# opposite of "has a fever", hence the exception after has/have.
_PRESENT = re.compile(
    r"\b(?:is|am|are|im|hes|shes|theyre|isnt|arent|now|still|today|tonight|currently"
    r"|since|for|been|started|starting|began|begun|keeps?|getting|cant|cannot|hurts?"
    r"|hurting|aches?|feels?|feeling|right now|at the moment|this (?:morning|afternoon"
    r"|evening|week|month))\b"
    r"|\b(?:has|have|hav|ive|weve|theyve)\b(?! (?:gone|cleared|passed|stopped|resolved"
    r"|settled|disappeared|been fine|been ok|been okay|been well|been better))")
_RECURRED = re.compile(
    r"\b(?:again|came back|come back|comes back|coming back|its back|it is back|returned"
    r"|returning|worse|worsening|recurring|recurred)\b")


def plain(text: str) -> str:
    """Lower case without accents or apostrophes: "Can't" becomes "cant"."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain_text = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return re.sub(r"['\u2019\u2018`\u00b4]", "", plain_text)


def split(text: str) -> list[str]:
    """The clauses of `text`, each as plain text (see the module docstring)."""
    clauses = []
    for part in _CLAUSE_END.split(plain(text)):
        clauses += [clause for clause in _BEFORE_STARTER.split(part) if words(clause)]
    return clauses


def words(text: str) -> list[str]:
    """The words and numbers of plain text ("39.8" is two)."""
    return re.findall(r"[a-z]+|\d+", text)


def recurred(text: str) -> bool:
    """Whether the message says a symptom came back or is getting worse."""
    return _RECURRED.search(" ".join(words(plain(text)))) is not None


def distant_past(clause: str) -> bool:
    """Whether a clause (from `split`) is about a time at least a week back, not about now."""
    text = " ".join(words(clause))
    return _DISTANT.search(text) is not None and _PRESENT.search(text) is None
