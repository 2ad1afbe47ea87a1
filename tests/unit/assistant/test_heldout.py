"""The assistant on held-out messages: written before the red-flag lists were widened.

heldout.csv holds messages as patients, parents and carers type them (typos, txt-speak,
no punctuation, third person, temperatures in °F and °C, an emergency buried in another
question). A red flag must get the emergency message alone. Any other message must not,
unless its row says why over-triage is acceptable there; it must then get its expected
topic ("*" when several would do, "a|b" when either would).

Round 1 was written before any change and measured the first release; round 2 was written
after round 1 was caught and measured that before the lists were widened again; round 3
holds what a later spot check by another engineer found missing.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from csss_fhir.assistant.answers import emergency_text
from csss_fhir.assistant.intents import Intent
from tests.unit.assistant.test_answers import CONTACTS, ask

with (Path(__file__).parent / "heldout.csv").open(newline="", encoding="utf-8") as file:
    ROWS = list(csv.DictReader(file))
RED_FLAGS = [row for row in ROWS if row["expected"] == "emergency"]
OTHERS = [row for row in ROWS if row["expected"] != "emergency"]
ACTIVE = ("Amoxicillin 500 mg, oral, three times a day, for 7 days",
          "Paracetamol 1 g, oral, every 6 hours as needed")


def test_the_set_is_large_and_covers_every_category():
    assert len(RED_FLAGS) >= 70 and len(OTHERS) >= 50
    categories = {row["category"] for row in RED_FLAGS}
    assert categories >= {"breathing", "not breathing", "choking", "chest pain", "blue lips",
                          "fainting", "coughing blood", "confusion", "child fever",
                          "seizure", "stroke", "anaphylaxis", "suicidal", "bleeding",
                          "sepsis", "baby", "buried"}
    topics = {topic for row in OTHERS for topic in row["expected"].split("|")} - {"*"}
    assert topics <= {intent.value for intent in Intent} - {"emergency"}
    assert not [row for row in RED_FLAGS if row["overtriage_ok"]]
    assert {row["round"] for row in ROWS} == {"1", "2", "3"}


@pytest.mark.parametrize("message", [row["message"] for row in RED_FLAGS])
def test_a_held_out_red_flag_gets_the_emergency_message_alone(message):
    reply = ask(message)
    assert reply.emergency, f"{message!r} is an emergency"
    assert reply.text == emergency_text(CONTACTS) and "999" in reply.text
    assert reply.items == ()


@pytest.mark.parametrize("row", OTHERS, ids=[row["message"][:40] for row in OTHERS])
def test_a_held_out_question_gets_its_topic_not_the_emergency(row):
    reply = ask(row["message"])
    if reply.emergency and row["overtriage_ok"]:
        return  # accepted, for the reason in the row
    assert not reply.emergency, f"{row['message']!r} is not an emergency"
    if row["expected"] != "*":
        assert reply.topic in row["expected"].split("|")


@pytest.mark.parametrize("message", [row["message"] for row in OTHERS
                                     if row["expected"] == "medication"])
def test_a_held_out_medicine_question_lists_the_active_prescriptions(message):
    reply = ask(message)
    assert reply.items == ACTIVE
    assert "pharmacist" in reply.text and "Do not stop" in reply.text
