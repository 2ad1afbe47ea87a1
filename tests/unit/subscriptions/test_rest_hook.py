"""Topic-based subscriptions end to end (issue 17 item 4): a system client subscribes, a
real HTTP receiver on loopback gets the handshake, then one numbered notification per
release — once each, in order, also across a time it answers 503 — and heartbeats;
`$status` and `$events` tell the same numbers."""

from __future__ import annotations

from datetime import timedelta

import time_machine
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.subscription import Subscription

from csss_fhir import workflow
from csss_fhir.extensions import services
from csss_fhir.jobs import SWEEP
from csss_fhir.models import db, utcnow
from tests.factories import actor_for, make_scan, make_user, parse_fhir
from tests.unit.subscriptions.conftest import (
    BASE,
    REPORT_RELEASED,
    SCAN_NEEDS_REVIEW,
    event_numbers,
    notification_type,
    subscription,
)

EHR = "system/Subscription.write system/DiagnosticReport.read"


def subscribe(client, headers, body) -> Subscription:
    response = client.post("/fhir/Subscription", json=body, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    created = parse_fhir(response.data, "Subscription")
    assert response.headers["Location"] == f"{BASE}/Subscription/{created.id}"
    return created


def release(app, count: int = 1, *, patient=None) -> list[str]:
    """Approve `count` scans through the real workflow; returns the report ids."""
    ids = []
    with app.app_context():
        for _ in range(count):
            scan_id, patient = make_scan("PHARMACIST_COMPLETED", patient=patient)
            report = workflow.approve(db.session, services(), actor_for(make_user("admin")[0]),
                                      scan_id)
            ids.append(report.id)
    return ids


def sweep_later(app, seconds: float) -> None:
    """Run the periodic sweep `seconds` from now (past any back-off)."""
    with time_machine.travel(utcnow() + timedelta(seconds=seconds)), app.app_context():
        app.extensions["csss_jobs"].submit(SWEEP, None)


def test_handshake_activates_the_subscription(client, system_client, receiver):
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(receiver.url,
                                                      headers=("X-Hook-Key: s3cret",)))
    # The tests' inline runner shakes hands right after the commit, before the answer;
    # elsewhere the answer says "requested" and a read later says "active".
    assert created.status == "active" and created.criteria == REPORT_RELEASED
    [(status, body, sent_headers)] = receiver.requests
    handshake = Bundle.model_validate(body)
    assert handshake.type == "history" and notification_type(body) == "handshake"
    Parameters.model_validate(body["entry"][0]["resource"])
    assert sent_headers["X-Hook-Key"] == "s3cret"
    assert sent_headers["Content-Type"] == "application/fhir+json"
    read = client.get(f"/fhir/Subscription/{created.id}", headers=headers)
    assert parse_fhir(read.data, "Subscription").status == "active"


def test_a_failed_handshake_leaves_the_subscription_in_error(client, system_client, receiver):
    receiver.status = 503
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(receiver.url))
    read = parse_fhir(client.get(f"/fhir/Subscription/{created.id}", headers=headers).data,
                      "Subscription")
    assert read.status == "error" and "503" in read.error


def test_each_release_arrives_once_in_order_across_an_outage(app, client, system_client,
                                                            receiver):
    headers = system_client(EHR)
    subscribe(client, headers, subscription(receiver.url))
    first = release(app)
    receiver.status = 503  # the EHR goes down for a while
    down = release(app, 3)
    attempts_while_down = len(receiver.requests)
    sweep_later(app, 1)  # inside the back-off: nothing is sent again yet
    assert len(receiver.requests) == attempts_while_down
    receiver.status = 200  # back up
    sweep_later(app, 30)
    later = release(app)
    accepted = receiver.accepted()
    assert [event_numbers(b) for b in accepted] == [[1], [2], [3], [4], [5]]
    focus = [b["entry"][1]["fullUrl"] for b in accepted]
    assert focus == [f"{BASE}/DiagnosticReport/{i}" for i in first + down + later]
    assert all("resource" not in b["entry"][1] for b in accepted)  # id-only
    # Event 2 was tried once while the receiver was down; 3 and 4 waited behind it.
    refused = [event_numbers(b) for s, b, _ in receiver.requests if s == 503]
    assert refused == [[2]]
    for body in accepted:
        Bundle.model_validate(body)


def test_full_resource_payload_and_the_patient_filter(app, client, system_client, receiver):
    headers = system_client(EHR)
    with app.app_context():
        mine = make_user("patient")[0]
        mine_id = mine.patient_id
    subscribe(client, headers, subscription(
        receiver.url, content="full-resource",
        filters=(f"DiagnosticReport?patient=Patient/{mine_id}",)))
    release(app)  # another patient's report: not for this subscription
    with app.app_context():
        mine = db.session.merge(mine)
        [report_id] = release(app, patient=mine)
    [body] = receiver.accepted()
    resource = body["entry"][1]["resource"]
    assert resource["resourceType"] == "DiagnosticReport" and resource["id"] == report_id
    assert resource["subject"]["reference"] == f"Patient/{mine_id}"
    Bundle.model_validate(body)


def test_a_scan_waiting_for_review_is_a_topic(app, client, system_client, receiver):
    headers = system_client("system/Subscription.write system/Task.read")
    subscribe(client, headers, subscription(receiver.url, SCAN_NEEDS_REVIEW))
    with app.app_context():
        scan_id, _ = make_scan("AI_ANALYZED")
        from csss_fhir.models import Scan

        task_id = db.session.get(Scan, scan_id).task.id
    [body] = receiver.accepted()
    assert body["entry"][1]["fullUrl"] == f"{BASE}/Task/{task_id}"


def test_heartbeats_come_when_nothing_happens(app, client, system_client, receiver):
    headers = system_client(EHR)
    subscribe(client, headers, subscription(receiver.url, heartbeat=60))
    sweep_later(app, 10)
    assert receiver.accepted("heartbeat") == []
    sweep_later(app, 61)
    [beat] = receiver.accepted("heartbeat")
    Bundle.model_validate(beat)


def test_status_and_events_operations(app, client, system_client, receiver):
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(receiver.url))
    reports = release(app, 3)
    response = client.get(f"/fhir/Subscription/{created.id}/$status", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    bundle = parse_fhir(response.data, "Bundle")
    assert bundle.type == "searchset"
    status = {p.name: p for p in bundle.entry[0].resource.parameter}
    assert status["events-since-subscription-start"].valueString == "3"
    assert status["status"].valueCode == "active"
    assert status["type"].valueCode == "query-status"
    response = client.get(f"/fhir/Subscription/{created.id}/$events?eventsSinceNumber=2"
                          "&eventsUntilNumber=3", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    events = response.get_json()
    Bundle.model_validate(events)
    assert notification_type(events) == "query-event"
    assert event_numbers(events) == [2, 3]
    assert [e["fullUrl"] for e in events["entry"][1:]] == [
        f"{BASE}/DiagnosticReport/{i}" for i in reports[1:]]
    backwards = client.get(f"/fhir/Subscription/{created.id}/$events?eventsSinceNumber=3"
                           "&eventsUntilNumber=2", headers=headers)
    assert backwards.status_code == 400
    assert "eventsSinceNumber" in backwards.get_data(as_text=True)


def test_only_the_owner_sees_a_subscription(client, system_client, receiver):
    created = subscribe(client, system_client(EHR), subscription(receiver.url))
    other = system_client(EHR)
    for path in ("", "/$status", "/$events"):
        response = client.get(f"/fhir/Subscription/{created.id}{path}", headers=other)
        assert response.status_code == 404, path


def test_each_status_change_is_a_version_with_vread_and_history(client, system_client,
                                                                receiver):
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(receiver.url))
    url = f"/fhir/Subscription/{created.id}"
    read = client.get(url, headers=headers)
    current = parse_fhir(read.data, "Subscription")
    # requested (version 1, at create), then active after the handshake (version 2).
    assert current.status == "active" and current.meta.versionId == "2"
    assert read.headers["ETag"] == 'W/"2"'
    first = parse_fhir(client.get(f"{url}/_history/1", headers=headers).data, "Subscription")
    assert first.status == "requested" and first.meta.versionId == "1"
    assert first.meta.lastUpdated <= current.meta.lastUpdated
    again = client.get(f"{url}/_history/2", headers=headers)
    assert again.get_json() == read.get_json() and again.headers["ETag"] == 'W/"2"'
    history = parse_fhir(client.get(f"{url}/_history", headers=headers).data, "Bundle")
    assert history.type == "history" and history.total == 2
    assert [e.resource.status for e in history.entry] == ["active", "requested"]
    assert client.get(url, headers={**headers, "If-None-Match": 'W/"2"'}).status_code == 304
    assert client.get(f"{url}/_history/3", headers=headers).status_code == 404
    # Another client learns nothing of it, not even its history.
    other = system_client(EHR)
    assert client.get(f"{url}/_history", headers=other).status_code == 404
    assert client.get(f"{url}/_history/1", headers=other).status_code == 404


def test_an_error_is_a_version_that_stays_as_it_was(app, client, system_client, receiver):
    receiver.status = 503
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(receiver.url))
    url = f"/fhir/Subscription/{created.id}"
    failed = parse_fhir(client.get(url, headers=headers).data, "Subscription")
    assert failed.status == "error" and failed.meta.versionId == "2" and "503" in failed.error
    sweep_later(app, 3600)  # nothing more to send: no new version, the error still shown
    later = parse_fhir(client.get(url, headers=headers).data, "Subscription")
    assert later.meta.versionId == "2" and later.error == failed.error
