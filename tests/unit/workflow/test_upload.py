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
