"""What delivery checks and records (csss_fhir.subscriptions.delivery): the endpoint again
before every notification, on the address it connects to; no redirects; an AuditEvent per
notification sent or failed; no patient data in the log.

Here only the name `hook.example.test` is allow-listed; the `dns` fixture points it at the
loopback receivers, then elsewhere.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from adapters.fhir.audit_event import to_fhir_audit_event
from csss_fhir.models import AuditRecord, Patient, Report, db
from csss_fhir.settings import EndpointAllowlist
from csss_fhir.subscriptions.delivery import SUBTYPE
from tests import factories
from tests.unit.subscriptions.conftest import Receiver, event_numbers, subscription
from tests.unit.subscriptions.test_rest_hook import EHR, release, subscribe, sweep_later

HOOK = "hook.example.test"


@pytest.fixture
def settings(tmp_path, new_database):
    return factories.settings_for(tmp_path / "instance", new_database(),
                                  subscription_endpoint_allowlist=EndpointAllowlist.parse(HOOK))


def hook_url(receiver: Receiver) -> str:
    return f"http://{HOOK}:{urlsplit(receiver.url).port}/hook"


def notification_audits(app) -> list[AuditRecord]:
    with app.app_context():
        rows = db.session.scalars(select(AuditRecord).where(AuditRecord.subtype_code == SUBTYPE)
                                  .order_by(AuditRecord.recorded)).all()
        db.session.expunge_all()
        return list(rows)


def test_a_loopback_endpoint_not_allow_listed_is_refused_at_create(client, system_client,
                                                                    receiver):
    response = client.post("/fhir/Subscription", json=subscription(receiver.url),
                           headers=system_client(EHR))
    assert response.status_code == 422, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["Subscription.channel.endpoint"]
    assert "only https" in issue["diagnostics"]
    assert receiver.requests == []


@pytest.mark.parametrize(("header", "says"), [("X-Key secret", "Name: value"),
                                              ("X-Key: a\r\nX-Evil: b", "line breaks")])
def test_a_header_that_cannot_be_sent_is_refused_at_create(client, system_client, receiver,
                                                           dns, header, says):
    dns[HOOK] = ["127.0.0.1"]
    response = client.post("/fhir/Subscription",
                           json=subscription(hook_url(receiver), headers=(header,)),
                           headers=system_client(EHR))
    assert response.status_code == 422, response.get_data(as_text=True)
    [issue] = response.get_json()["issue"]
    assert issue["expression"] == ["Subscription.channel.header"] and says in issue[
        "diagnostics"]


def test_delivery_checks_the_address_again_and_ends_in_error(app, client, system_client,
                                                             receiver, dns):
    dns[HOOK] = ["127.0.0.1"]
    headers = system_client(EHR)
    created = subscribe(client, headers, subscription(hook_url(receiver)))
    [first] = release(app)
    # The name now resolves to the metadata service (DNS rebinding): nothing is sent there.
    dns[HOOK] = ["169.254.169.254"]
    [second] = release(app)
    assert [event_numbers(b) for _, b, _ in receiver.requests] == [[], [1]]
    assert receiver.requests[0][2]["Host"] == f"{HOOK}:{urlsplit(receiver.url).port}"
    status = client.get(f"/fhir/Subscription/{created.id}/$status", headers=headers)
    parameters = {p["name"]: p for p in status.get_json()["entry"][0]["resource"]["parameter"]}
    assert parameters["status"]["valueCode"] == "error"
    assert "link-local" in parameters["error"]["valueCodeableConcept"]["text"]
    # Once in error, later events are not even tried.
    release(app)
    assert len(receiver.requests) == 2

    handshake, delivered, refused = notification_audits(app)
    assert (handshake.outcome, delivered.outcome, refused.outcome) == ("0", "0", "8")
    assert handshake.entities == [f"Subscription/{created.id}"]
    assert "handshake" in handshake.description
    assert set(delivered.entities) == {f"Subscription/{created.id}", f"DiagnosticReport/{first}"}
    assert delivered.description == "event-notification (event 1): delivered"
    assert delivered.source_address == "127.0.0.1"
    assert set(refused.entities) == {f"Subscription/{created.id}",
                                     f"DiagnosticReport/{second}"}
    assert refused.description.startswith("event-notification (event 2): refused: ")
    with app.app_context():
        assert delivered.patient_id == db.session.get(Report, first).patient_id
        assert refused.patient_id == db.session.get(Report, second).patient_id
    event = to_fhir_audit_event(delivered)
    assert event.type.code == "110106" and event.agent[0].who.identifier.value
    assert f"Subscription/{created.id}" in {e.what.reference for e in event.entity if e.what}


def test_redirects_are_not_followed(client, system_client, receiver, dns):
    dns[HOOK] = ["127.0.0.1"]
    elsewhere = Receiver()
    try:
        receiver.status, receiver.location = 307, elsewhere.url
        headers = system_client(EHR)
        created = subscribe(client, headers, subscription(hook_url(receiver)))
        read = client.get(f"/fhir/Subscription/{created.id}", headers=headers).get_json()
        assert read["status"] == "error" and "307" in read["error"]
        assert elsewhere.requests == []
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()


def test_a_failed_notification_is_audited_and_retried(app, client, system_client, receiver,
                                                      dns):
    dns[HOOK] = ["127.0.0.1"]
    subscribe(client, system_client(EHR), subscription(hook_url(receiver)))
    receiver.status = 503
    release(app)
    failed = notification_audits(app)[-1]
    assert failed.outcome == "4"
    assert failed.description == ("event-notification (event 1): failed: the endpoint "
                                  "answered 503; expected 2xx")


def test_delivery_logs_no_patient_data(app, client, system_client, receiver, dns, caplog):
    dns[HOOK] = ["127.0.0.1"]
    subscribe(client, system_client(EHR), subscription(hook_url(receiver),
                                                       content="full-resource"))
    with app.app_context():
        patient = factories.make_user("patient", name="Ada Unlogged")[0]
        secrets = [patient.patient_id, "Ada Unlogged", patient.email]
        mrn = db.session.get(Patient, patient.patient_id).mrn
        secrets += [mrn] if mrn else []
    caplog.set_level(logging.DEBUG)
    receiver.status = 503
    release(app, patient=patient)  # a failure
    dns[HOOK] = ["169.254.1.1"]
    sweep_later(app, 30)  # a refusal
    logged = [r for r in caplog.records if r.name.startswith("csss_fhir.subscriptions")]
    assert {r.getMessage() for r in logged} == {"subscription delivery failed",
                                                "subscription endpoint refused"}
    for record in logged:
        text = f"{record.getMessage()} {record.__dict__}"
        assert not [secret for secret in secrets if secret in text]


def self_signed(directory, host: str):
    """A certificate for `host` (and its key) in PEM files."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "hook.pem", directory / "hook.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_connects_to_the_checked_address_and_verifies_the_name(
        client, system_client, receiver, dns, tmp_path, monkeypatch):
    import ssl

    cert, key = self_signed(tmp_path, HOOK)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    dns[HOOK] = ["127.0.0.1"]
    url = f"https://{HOOK}:{urlsplit(receiver.url).port}/hook"
    headers = system_client(EHR)
    untrusted = subscribe(client, headers, subscription(url))
    read = client.get(f"/fhir/Subscription/{untrusted.id}", headers=headers).get_json()
    assert read["status"] == "error" and "SSLError" in read["error"]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the system's CA store, for this test
    assert subscribe(client, headers, subscription(url)).status == "active"
    assert receiver.requests[-1][2]["Host"] == f"{HOOK}:{urlsplit(receiver.url).port}"
