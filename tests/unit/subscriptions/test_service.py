"""Who may subscribe to what, and what a Subscription must say (csss_fhir.subscriptions)."""

from __future__ import annotations

import pytest

from tests.unit.subscriptions.conftest import REPORT_RELEASED, subscription


def test_a_user_may_not_subscribe(client, as_role, receiver):
    response = client.post("/fhir/Subscription", json=subscription(receiver.url),
                           headers=as_role("doctor"))
    assert response.status_code == 403
    assert "system clients" in response.get_data(as_text=True)
    assert receiver.requests == []


@pytest.mark.parametrize(("scopes", "says"), [
    ("system/DiagnosticReport.read", "Subscription"),
    ("system/Subscription.write system/Task.read", "system/DiagnosticReport.read"),
])
def test_scopes_decide(client, system_client, receiver, scopes, says):
    response = client.post("/fhir/Subscription", json=subscription(receiver.url),
                           headers=system_client(scopes))
    assert response.status_code == 403
    assert says in response.get_data(as_text=True)
    assert receiver.requests == []


@pytest.mark.parametrize(("change", "says"), [
    (lambda b: b.update(criteria="http://elsewhere/SubscriptionTopic/x"), "names no topic"),
    (lambda b: b["channel"].update(type="websocket"), "rest-hook"),
    (lambda b: b["channel"].update(endpoint="ftp://example.org/x"), "http(s)"),
    (lambda b: b["channel"].update(payload="application/fhir+xml"), "application/fhir+json"),
    (lambda b: b["channel"]["_payload"]["extension"][0].update(valueCode="empty"), "id-only"),
    (lambda b: b.update(_criteria={"extension": [{
        "url": "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/"
               "backport-filter-criteria", "valueString": "Task?status=ready"}]}),
     "DiagnosticReport?patient="),
    (lambda b: b.update(resourceType="Patient"), "expected a Subscription"),
    (lambda b: b.pop("channel"), "channel"),
])
def test_what_a_subscription_must_say(client, system_client, receiver, change, says):
    body = subscription(receiver.url)
    change(body)
    response = client.post("/fhir/Subscription", json=body,
                           headers=system_client("system/*.write system/*.read"))
    assert response.status_code in (400, 422), response.get_data(as_text=True)
    assert says in response.get_data(as_text=True)
    assert receiver.requests == []


def test_metadata_lists_the_topics_and_operations(client, as_role):
    statement = client.get("/fhir/metadata").get_json()
    [entry] = [r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription"]
    topics = [e["valueCanonical"] for e in entry["extension"]]
    assert REPORT_RELEASED in topics and len(topics) == 2
    assert {o["name"] for o in entry["operation"]} == {"status", "events"}
    assert {i["code"] for i in entry["interaction"]} == {"create", "read", "vread",
                                                         "history-instance"}


def test_a_caller_without_the_right_is_refused_before_the_body_is_read(client, as_role):
    response = client.post("/fhir/Subscription", data="not json",
                           headers={**as_role("pharmacist"),
                                    "Content-Type": "application/fhir+json"})
    assert response.status_code == 403


def test_a_subscription_made_before_versions_were_kept_keeps_its_first(app, client,
                                                                       system_client,
                                                                       receiver):
    from sqlalchemy import delete

    from csss_fhir.models import ResourceVersion, Subscription, db
    from csss_fhir.subscriptions.service import ERROR, change_status, versions

    headers = system_client("system/Subscription.write system/DiagnosticReport.read")
    created = client.post("/fhir/Subscription", json=subscription(receiver.url),
                          headers=headers).get_json()
    with app.app_context():
        db.session.execute(delete(ResourceVersion).where(  # as 0016 left older rows
            ResourceVersion.resource_id == created["id"]))
        row = db.session.get(Subscription, created["id"])
        kept = versions(db.session, row, "http://127.0.0.1:5000/fhir")
        assert [v.version_id for v in kept] == [row.version_id]  # rendered, not stored
        before = row.version_id
        change_status(db.session, row, ERROR, "http://127.0.0.1:5000/fhir", "gone")
        change_status(db.session, row, ERROR, "http://127.0.0.1:5000/fhir", "gone")  # same
        db.session.commit()
        kept = versions(db.session, row, "http://127.0.0.1:5000/fhir")
        assert [v.version_id for v in kept] == [before + 1, before]
        assert b'"error"' in kept[0].body and b'"active"' in kept[1].body
