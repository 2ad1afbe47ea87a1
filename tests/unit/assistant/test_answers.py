"""The help assistant, question by question: red flags first, then the intent's answer.

Each row is a message a patient might type and what the answer must be. An emergency row
must get the emergency message alone; a control row must not (a patient asking about
their chest X-ray is not in danger because the word "chest" appears).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csss_fhir.assistant import Answer, Contacts, ScanStatus, answer
from csss_fhir.assistant.answers import MENU, emergency_text
from csss_fhir.patient_reports import Medicine

CONTACTS = Contacts(emergency_number="999", hospital_phone="+44 20 7946 0000",
                    hospital_name="St. Test Hospital")
MEDICINES = [
    Medicine("Amoxicillin", "500 mg", "oral", "three times a day", "7 days", None, "active"),
    Medicine("Cefuroxime", "250 mg", "oral", "twice a day", "5 days", None, "cancelled"),
    Medicine("Paracetamol", "1 g", "oral", "every 6 hours as needed", None, None, "active"),
    Medicine("Amoxicilin", "5000 mg", "oral", "daily", None, None, "entered-in-error"),
]
SCANS = [ScanStatus(datetime(2025, 1, 2, tzinfo=UTC), "REPORT_READY"),
         ScanStatus(datetime(2025, 3, 4, tzinfo=UTC), "AI_ANALYZED")]

RED_FLAGS = [
    # breathing, in many phrasings and misspellings
    "I am short of breath", "shortness of breath since last night", "cant breth",
    "I can't breathe!!", "i cannot breathe properly", "CAN NOT BREATHE", "difficulty breathing",
    "struggling to breathe after the stairs", "I am so brethless", "breathless when walking",
    "I'm out of breath all the time", "trouble breathing at night", "can barely breath",
    "I'm wheezing and can't get air", "it hurts to breathe", "my breathing is getting worse",
    # chest pain, pressure, tightness
    "chset pain", "crushing chest pain, lips turning blue", "pain in my chest",
    "my chest feels tight", "pressure on my chest", "chest tightnes when I walk",
    "I am not sure but my chest hurts", "I don't think I have chest pain", "my chest is aching",
    # colour
    "lips turning blue", "my lips are bleu", "her face is grey", "my fingers are going blue",
    # fainting, collapse
    "I fainted this morning", "my dad passed out", "my wife collapsed in the kitchen",
    "I feel faint",
    # blood
    "coughing up blood", "I've been coughing blood", "spitting blood", "blood in my phlegm",
    "couhging up bloood",
    # confusion, drowsiness
    "my mother is very confused and drowsy", "my husband is hard to wake",
    "grandpa is suddenly confused", "he won't wake up",
    # children with fever
    "my baby has 40 fever", "my son has a high temperature", "toddler with fever 39.5",
    "my 2 year old daughter is feverish", "baby with a temp", "my child is burning up",
    "my little one has 40.2", "my infant is not feeding and has a temperature",
    # seizures, allergy, suicide
    "she had a siezure", "he is having a fit", "convulsions",
    "I think I'm having an allergic reaction, my throat is swelling", "my tongue is swollen",
    "I want to kill myself", "I feel suicidal", "I took an overdose of paracetamol",
    "I don't want to live anymore", "I took too many pills",
    # emergencies hidden in other questions
    "when is my report ready? also my chest hurts", "can I stop antibiotics? I cant breathe",
    "Ma poitrine, chest pain, j'ai mal",
]

CONTROLS = [
    # (message, topic, words the answer must contain)
    ("my chest x-ray was uploaded", "report-status", "latest scan"),
    ("what does pneumonia mean", "meaning", "infection of the lungs"),
    ("what does bacterial pneumonia mean", "meaning", "bacteria"),
    ("what does lung opacity mean", "meaning", "denser than normal"),
    ("what does covid mean", "meaning", "COVID-19"),
    ("what does not assessable mean", "meaning", "could not be assessed"),
    ("can I stop antibiotics when I feel better?", "medication", "Do not stop"),
    ("side effects of amoxicillin", "medication", "pharmacist"),
    ("how much paracetamol can I take", "medication", "pharmacist"),
    ("what is the dose of my tablets", "medication", "Amoxicillin 500 mg"),
    ("can i stop my antibiotcs early", "medication", "Do not stop"),
    ("when will my result be ready", "report-status", "waiting for a doctor"),
    ("where is my report", "report-status", "04 March 2025"),
    ("where is my scan", "report-status", "2 scans in total"),
    ("who can see my data", "privacy", "every access is recorded"),
    ("is my information shared with my employer", "privacy", "not shared"),
    ("is this a diagnosis", "diagnosis", "not a diagnosis"),
    ("can I trust the AI", "diagnosis", "not a diagnosis"),
    ("can I talk to a person", "person", "+44 20 7946 0000"),
    ("I want to speak to someone", "person", "St. Test Hospital"),
    ("how do I read my report", "reading", "doctor's finding comes first"),
    ("what does uncertain mean", "uncertain", "not confident enough"),
    ("how long does it take", "time", "one to two working days"),
    ("what file can I upload", "upload", "JPEG, PNG or DICOM"),
    ("what are the stages", "states", "five stages"),
    ("how does the computer work", "ai", "computer program"),
    ("does the AI breathe?", "ai", "computer program"),
    ("the file fits the limit?", "upload", "JPEG"),
    ("my son sent the file", "upload", "JPEG"),
    ("how many tablets per day", "medication", "Paracetamol 1 g"),
    ("purple elephants", "help", "I can help with"),
    ("", "help", "I can help with"),
    ("hello", "help", "I can help with"),
    ("I have a cold, what does my result mean", "meaning", "report"),
]


def ask(message: str) -> Answer:
    return answer(message, SCANS, MEDICINES, CONTACTS)


def test_the_table_has_at_least_sixty_questions():
    assert len(RED_FLAGS) + len(CONTROLS) >= 60


@pytest.mark.parametrize("message", RED_FLAGS)
def test_a_red_flag_gets_the_emergency_message_alone(message):
    reply = ask(message)
    assert reply.emergency and reply.topic == "emergency"
    assert reply.text == emergency_text(CONTACTS)
    assert "999" in reply.text and "+44 20 7946 0000" in reply.text
    assert reply.items == ()  # nothing beside it: not even the prescriptions


@pytest.mark.parametrize("message, topic, expected", CONTROLS)
def test_other_questions_get_their_answer_and_never_the_emergency(message, topic, expected):
    reply = ask(message)
    assert not reply.emergency, f"{message!r} is not an emergency"
    assert reply.topic == topic
    assert expected in reply.text + " ".join(reply.items)


def test_a_medicine_answer_lists_only_active_prescriptions_and_never_says_stop():
    reply = ask("can I stop antibiotics when I feel better?")
    assert reply.items == ("Amoxicillin 500 mg, oral, three times a day, for 7 days",
                           "Paracetamol 1 g, oral, every 6 hours as needed")
    assert "Cefuroxime" not in reply.text + " ".join(reply.items)
    assert "5000 mg" not in " ".join(reply.items)
    assert "pharmacist" in reply.text and "Do not stop" in reply.text


def test_a_medicine_answer_without_prescriptions_says_so():
    reply = answer("side effects?", SCANS, [], CONTACTS)
    assert reply.items == () and "no active prescriptions" in reply.text


def test_without_a_hospital_phone_the_answers_still_name_the_hospital():
    contacts = Contacts(emergency_number="112", hospital_phone="", hospital_name="St. Test")
    reply = answer("cant breathe", [], [], contacts)
    assert "Call 112 now" in reply.text and "call St. Test straight away" in reply.text


def test_no_scan_yet_is_said_plainly():
    assert "not uploaded a scan yet" in answer("where is my scan", [], [], CONTACTS).text


def test_the_menu_is_short():
    assert ask("tell me a joke").text == MENU and len(MENU) < 300


def test_a_red_flag_at_the_end_of_a_long_message_is_still_read():
    message = "I uploaded my scan and wonder when the report is ready. " * 30 + "cant breathe"
    assert len(message) > 1_500 and ask(message).emergency
