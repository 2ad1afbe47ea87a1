"""The patient's help assistant: fixed answers, and "my scan" from the patient's states."""

from __future__ import annotations

from datetime import UTC, datetime

from csss_fhir.web.assistant import ScanStatus, answer


def test_common_questions_get_their_topic():
    assert answer("What does Uncertain mean?", []).topic == "uncertain"
    assert answer("how long does it take", []).topic == "time"
    assert answer("How do I read the report?", []).topic == "report"
    assert answer("what do the states mean", []).topic == "states"


def test_my_scan_is_answered_from_the_latest_own_scan():
    scans = [ScanStatus(datetime(2025, 1, 2, tzinfo=UTC), "REPORT_READY"),
             ScanStatus(datetime(2025, 3, 4, tzinfo=UTC), "AI_ANALYZED")]
    reply = answer("Where is my scan?", scans)
    assert reply.topic == "my-scan"
    assert "04 March 2025" in reply.text and "waiting for a doctor" in reply.text
    assert "2 scans" in reply.text


def test_unknown_question_gets_the_list_of_topics():
    assert answer("purple elephants", []).topic == "help"
    assert answer("", []).topic == "help"
