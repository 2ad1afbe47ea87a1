from __future__ import annotations

import xml.etree.ElementTree as ET

from adapters.fhir.narrative import narrative


def test_a_narrative_says_the_elements_in_words_and_escapes_them():
    text = narrative({
        "resourceType": "Observation", "id": "obs-1", "meta": {"versionId": "1"},
        "status": "final", "valueCodeableConcept": {"coding": [{"code": "x"}],
                                                    "text": "<b>Viral</b> & co"},
        "subject": {"reference": "Patient/p-1"}, "issued": "2025-01-01T00:00:00Z",
        "component": [{"valueBoolean": True}], "note": [{"text": "n"}] * 20,
    })
    assert text["status"] == "generated"
    div = ET.fromstring(text["div"])  # well-formed XHTML, markup in values escaped
    rows = {tr[0].text: tr[1].text for tr in div.iter("{http://www.w3.org/1999/xhtml}tr")}
    assert rows["valueCodeableConcept"] == "<b>Viral</b> & co"
    assert rows["subject"] == "Patient/p-1" and rows["status"] == "final"
    assert rows["note"].endswith("and 8 more")
    assert "meta" not in rows and "Observation obs-1" in "".join(div.itertext())
