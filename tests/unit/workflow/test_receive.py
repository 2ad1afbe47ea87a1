"""workflow.receive: the network doors' rules on top of the $upload ingest."""

from __future__ import annotations

import io

import pydicom
import pytest
from sqlalchemy import func, select

from csss_fhir.extensions import services
from csss_fhir.models import Scan
from csss_fhir.security.actor import Actor
from csss_fhir.workflow import receive
from csss_fhir.workflow.errors import StepNotAllowedError
from tests.factories import actor_for, make_user, radiograph

SENDER = Actor(role="system", client_id="dicom:PACS", scopes=frozenset(
    {"system/ImagingStudy.write"}))


def count(session) -> int:
    return session.scalar(select(func.count()).select_from(Scan))


def test_a_radiograph_becomes_a_scan_of_the_patient_with_its_mrn(session):
    user, _ = make_user("patient", mrn="R-1")
    received = receive.receive_instance(session, services(), SENDER, radiograph("R-1"))
    assert received.outcome is receive.Outcome.STORED
    assert received.scan.patient_id == user.patient_id
    session.refresh(received.scan.task)
    assert received.scan.task.state == "AI_ANALYZED"  # the AI job ran after the commit


def test_the_same_instance_again_is_found_not_stored(session):
    make_user("patient", mrn="R-2")
    data = radiograph("R-2", modality="DX")
    first = receive.receive_instance(session, services(), SENDER, data)
    again = receive.receive_instance(session, services(), SENDER, data)
    assert again.outcome is receive.Outcome.ALREADY_STORED and again.scan.id == first.scan.id
    assert count(session) == 1


def test_other_modalities_are_refused_before_anything_is_stored(session):
    make_user("patient", mrn="R-3")
    with pytest.raises(receive.NotRadiographError, match="Modality .* is CT"):
        receive.receive_instance(session, services(), SENDER, radiograph("R-3", modality="CT"))
    assert count(session) == 0


def test_an_instance_of_another_study_than_the_url_is_refused(session):
    make_user("patient", mrn="R-4")
    with pytest.raises(receive.IdentifierMismatchError, match="not the study 1.2.3"):
        receive.receive_instance(session, services(), SENDER, radiograph("R-4"),
                                 study_uid="1.2.3")


def test_an_unknown_patient_id_is_refused(session):
    with pytest.raises(receive.IdentifierMismatchError) as refused:
        receive.receive_instance(session, services(), SENDER, radiograph("NOBODY"))
    assert refused.value.details == "unknown-patient"
    assert "NOBODY" not in str(refused.value)  # the MRN is not echoed


def test_a_patient_may_send_only_their_own_instances(session):
    user, _ = make_user("patient", mrn="R-5")
    make_user("patient", mrn="R-6")
    own = receive.receive_instance(session, services(), actor_for(user), radiograph("R-5"))
    assert own.scan.patient_id == user.patient_id
    with pytest.raises(receive.ConflictError, match="PatientID"):
        receive.receive_instance(session, services(), actor_for(user), radiograph("R-6"))


def test_clients_without_the_write_scope_and_doctors_may_not_send(session):
    reader = Actor(role="system", client_id="x", scopes=frozenset({"system/*.read"}))
    doctor = actor_for(make_user("doctor")[0])
    for actor in (reader, doctor):
        with pytest.raises(StepNotAllowedError):
            receive.require_sender(actor)


def test_instances_over_the_upload_limit_are_refused(session):
    limit = services().settings.max_upload_bytes
    data = radiograph("R-7")
    header = pydicom.dcmread(io.BytesIO(data))
    header.add_new(0x00091010, "OB", b"\0" * limit)  # a private blob past the limit
    buffer = io.BytesIO()
    header.save_as(buffer)
    with pytest.raises(receive.PayloadTooLargeError, match="MAX_UPLOAD_MB"):
        receive.receive_instance(session, services(), SENDER, buffer.getvalue())


def test_a_resend_under_another_patient_id_reveals_nothing(session):
    user, _ = make_user("patient", mrn="R-8")
    make_user("patient", mrn="R-9")
    data = radiograph("R-8")
    receive.receive_instance(session, services(), SENDER, data)
    relabelled = pydicom.dcmread(io.BytesIO(data))
    relabelled.PatientID = "R-9"
    buffer = io.BytesIO()
    relabelled.save_as(buffer)
    with pytest.raises(receive.IdentifierMismatchError, match="another patient"):
        receive.receive_instance(session, services(), SENDER, buffer.getvalue())
    other, _ = make_user("patient", mrn="R-10")
    with pytest.raises(receive.IdentifierMismatchError, match="another patient"):
        receive.receive_instance(session, services(), actor_for(other), data)
    mine = receive.receive_instance(session, services(), actor_for(user), data)
    assert mine.outcome is receive.Outcome.ALREADY_STORED
