"""Issue 11 item 8 through the test client: the doctor's viewer without JavaScript (the image,
the heat map as a second image with its legend, the patient's other scans)."""

from __future__ import annotations

import re

from tests import factories


def _scans(app, *states: str) -> list[str]:
    """Scans of one new patient, oldest first."""
    with app.app_context():
        studies, patient = [], None
        for state in states:
            study, patient = factories.make_scan(state, patient=patient)
            studies.append(study)
        return studies


def test_the_scan_page_works_without_javascript_and_lists_the_other_scans(app, signed_in):
    earlier, current = _scans(app, "REPORT_READY", "AI_ANALYZED")
    (other_patients_scan,) = _scans(app, "AI_ANALYZED")
    browser, _, _ = signed_in("doctor")
    html = browser.client.get(f"/doctor/scans/{current}").get_data(as_text=True)
    assert f'src="/scans/{current}/image"' in html
    assert f'src="/scans/{current}/gradcam"' in html  # the heat map as a second image
    assert "Red is the AI's attention, not a finding" in html
    assert re.search(r'class="viewer-toolbar"[^>]*hidden', html)  # shown by viewer.js only
    assert '<script src="/static/js/viewer.js" defer></script>' in html
    assert "<script>" not in html and " style=" not in html  # the CSP allows neither
    other_scans = html[html.index('id="other-scans"'):]
    assert f'href="/doctor/scans/{earlier}"' in other_scans
    assert "Report released" in other_scans
    assert other_patients_scan not in html and f"/doctor/scans/{current}\"" not in other_scans


def test_a_patient_without_other_scans_is_told_so(app, signed_in):
    (study,) = _scans(app, "PENDING_AI")
    browser, _, _ = signed_in("doctor")
    html = browser.client.get(f"/doctor/scans/{study}").get_data(as_text=True)
    assert "No other scans of this patient." in html
    assert "heatmap-opacity" not in html  # nothing to overlay before the AI has run
