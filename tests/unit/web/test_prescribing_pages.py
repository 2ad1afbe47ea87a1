"""The pharmacist's correct / cancel / override forms and the admin's amendment approval, as
a browser posts them (signed in through /login, with CSRF)."""

from __future__ import annotations

from csss_fhir import workflow
from csss_fhir.models import Prescription, Report, Scan, db
from tests import factories


def test_pharmacist_corrects_cancels_and_overrides_a_dose_warning(app, signed_in):
    browser, _, _ = signed_in("pharmacist")
    with app.app_context():
        scan_id, _ = factories.make_scan("DOCTOR_VERIFIED")
    page = f"/pharmacist/scans/{scan_id}"
    overdose = {"drug": "Amoxicilin", "dose": "5000", "unit": "mg", "route": "26643006",
                "frequency": "3/1/d", "duration": "7"}
    response = browser.post(f"{page}/prescriptions", overdose, page=page,
                            follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Dose warning:" in html and "exceeds the adult maximum (age unknown) of 4,000 mg" in html
    assert 'id="override_reason"' in html
    with app.app_context():
        row = db.session.query(Prescription).filter_by(scan_id=scan_id).one()
        rx_id, version = row.id, row.version_id

    edit = f"{page}/prescriptions/{rx_id}"
    form = browser.client.get(edit).get_data(as_text=True)
    assert 'value="5000"' in form and 'value="3/1/d" selected' in form
    stale = browser.post(edit, {**overdose, "dose": "500", "version": "9"}, page=edit)
    assert stale.status_code == 412 and "version" in stale.get_data(as_text=True)
    response = browser.post(edit, {**overdose, "dose": "500", "version": str(version)},
                            page=edit, follow_redirects=True)
    assert "Dose warning:" not in response.get_data(as_text=True)

    browser.post(f"{page}/prescriptions", {**overdose, "drug": "Ibuprofen", "dose": "800",
                                           "frequency": "4/1/d"}, page=page)
    refused = browser.post(f"{page}/complete", {"review_note": "ok"}, page=page)
    assert refused.status_code == 409 and "ibuprofen" in refused.get_data(as_text=True)
    with app.app_context():
        ibuprofen = db.session.query(Prescription).filter_by(medication="Ibuprofen").one()
        amoxicillin = db.session.get(Prescription, rx_id)
        assert (amoxicillin.version_id, amoxicillin.dose) == (2, "500 mg")
    assert browser.post(f"{page}/prescriptions/{amoxicillin.id}/cancel",
                        {"status": "entered-in-error", "version": "2"},
                        page=page).status_code == 302
    done = browser.post(f"{page}/complete", {
        "review_note": "ok", "override_reason": "Rheumatology dose, agreed with Dr Lee"},
        page=page)
    assert done.status_code == 302
    with app.app_context():
        assert db.session.get(Scan, scan_id).task.state == "PHARMACIST_COMPLETED"
        assert db.session.get(Prescription, ibuprofen.id).override_reason == \
            "Rheumatology dose, agreed with Dr Lee"
        assert db.session.get(Prescription, rx_id).status == "entered-in-error"
    assert browser.client.get(edit).status_code == 200  # read-only now: no forms
    assert "Save correction" not in browser.client.get(edit).get_data(as_text=True)


def test_admin_sees_a_pending_amendment_and_approves_it(app, signed_in):
    with app.app_context():
        scan_id, _ = factories.make_scan("REPORT_READY")
        report_id = db.session.get(Scan, scan_id).report.id
        doctor = factories.make_user("doctor", name="Dr Proposer")[0]
        workflow.amend(db.session, factories.actor_for(doctor), report_id,
                       note="The effusion was missed.", finding="Viral_Pneumonia")
    browser, _, _ = signed_in("admin")
    dashboard = browser.client.get("/admin").get_data(as_text=True)
    assert 'id="pending-amendments"' in dashboard and "Dr Proposer" in dashboard
    page = f"/admin/reports/{report_id}"
    assert "The effusion was missed." in browser.client.get(page).get_data(as_text=True)
    response = browser.post(f"{page}/amendment/approve", {}, page=page,
                            follow_redirects=True)
    html = response.get_data(as_text=True)
    assert "Amendment approved" in html and "Version 2" in html
    with app.app_context():
        report = db.session.get(Report, report_id)
        assert (report.status, report.finding) == ("corrected", "Viral_Pneumonia")
    assert "No amendment is waiting." in browser.client.get("/admin").get_data(as_text=True)
