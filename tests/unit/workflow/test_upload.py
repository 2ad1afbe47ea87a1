"""$upload: whose scan it is."""

from __future__ import annotations

import pytest

from csss_fhir import workflow
from csss_fhir.extensions import services
from csss_fhir.workflow.errors import StepNotAllowedError
from tests.factories import actor_for, make_user


def test_patient_cannot_upload_for_another_patient(session):
    patient = make_user("patient")[0]
    other = make_user("patient")[0]
    request = workflow.UploadRequest(data=b"", patient_id=other.patient_id)
    with pytest.raises(StepNotAllowedError):
        workflow.upload_scan(session, services(), actor_for(patient), request)


def test_a_patient_learns_nothing_about_which_mrns_exist(session):
    """A file naming an existing MRN and one naming no one get the same refusal."""
    from csss_fhir.errors import ConflictError
    from tests.factories import dicom_sample

    data = dicom_sample("CT_small.dcm")  # PatientID 1CT1
    uploader = make_user("patient", mrn="MINE-1")[0]
    answers = []
    for owner_exists in (False, True):
        if owner_exists:
            make_user("patient", mrn="1CT1")
        with pytest.raises(ConflictError) as refused:
            workflow.upload_scan(session, services(), actor_for(uploader),
                                 workflow.UploadRequest(data=data, patient_id=None))
        session.rollback()
        answers.append((str(refused.value), refused.value.details))
    assert answers[0] == answers[1] and answers[0][1] == "patient-mismatch"
