"""assistant: the patient's help assistant, as rules. No Flask, no database, no model.

A message is checked for red-flag symptoms first (`red_flags`, which reads temperatures
with `temperature` and lets go of symptoms weeks in the past with `clauses`); only a
message without one is sorted into an intent (`intents`) and answered with words written
here (`answers`). The
assistant never generates text and never interprets a scan: it points to people.
"""

from csss_fhir.assistant.answers import Answer, Contacts, Medicine, ScanStatus, answer

__all__ = ["Answer", "Contacts", "Medicine", "ScanStatus", "answer"]
