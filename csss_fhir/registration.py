"""Patients and user accounts: creation, and who may fetch which stored file."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from adapters.fhir.common import MRN_SYSTEM
from adapters.fhir.patient import GENDERS, PatientData
from csss_fhir import history, limits
from csss_fhir.errors import ConflictError, InvalidInputError, ResourceValidationError
from csss_fhir.models import Blob, Patient, Report, Role, User
from csss_fhir.security import access, passwords
from csss_fhir.security.actor import Actor

log = logging.getLogger(__name__)


def create_patient(session: Session, actor: Actor, data: PatientData) -> Patient:
    """Register a Patient (admin, doctor or a system client with Patient.write).

    Raises:
        AccessDeniedError; ConflictError when the MRN is already registered.
    """
    access.require_create(actor, "Patient")
    patient = _new_patient(session, data)
    history.record(session, patient)
    session.commit()
    log.info("patient created", extra={"patient_id": patient.id})
    return patient


def _allow_local_domains() -> None:
    """Hospital mail servers often serve an internal `.local` domain: accept it, the way
    email-validator's README documents (by removing it from its special-use names)."""
    import email_validator

    if "local" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("local")


def checked_email(value: object) -> str:
    """One e-mail address, checked by email-validator (syntax only: no DNS lookups, and
    hospital-internal domains such as .local are allowed); returned normalised.

    A list ("a@x, b@y") or a header break (CR/LF) is refused here, where it is set, instead
    of sending a report to two people or failing at every send.

    Raises:
        InvalidInputError: not exactly one valid address.
    """
    from email_validator import EmailNotValidError, validate_email

    _allow_local_domains()
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("an e-mail address is required (like name@hospital.org)")
    try:
        return validate_email(value.strip(), check_deliverability=False,
                              globally_deliverable=False).normalized
    except EmailNotValidError as err:
        raise InvalidInputError(f"the e-mail address is not valid: {err}; send exactly one "
                                "address, like name@hospital.org") from err


def _new_patient(session: Session, data: PatientData) -> Patient:
    for field, value, limit in (("the family name", data.family_name, limits.NAME),
                                ("the given names", data.given_names, limits.NAME),
                                ("the medical record number", data.mrn, 64),
                                ("the identifier system", data.mrn_system, 255)):
        limits.check_length(field, value, limit)
    if data.email is not None:
        data = replace(data, email=checked_email(data.email))
    if data.gender is not None and data.gender not in GENDERS:
        raise ResourceValidationError(f"gender must be one of {', '.join(GENDERS)}")
    system = (data.mrn_system or MRN_SYSTEM) if data.mrn else None
    if data.mrn and session.scalar(select(Patient.id).where(
            Patient.mrn == data.mrn, Patient.mrn_system == system)):
        raise ConflictError(f"a patient with the identifier {system}|{data.mrn} already "
                            "exists; search Patient?identifier= to find them")
    patient = Patient(family_name=data.family_name, given_names=data.given_names,
                      birth_date=data.birth_date, gender=data.gender, email=data.email,
                      mrn=data.mrn, mrn_system=system, active=data.active,
                      resource_json=data.resource_json)
    session.add(patient)
    return patient


def create_user(session: Session, *, email: str, role: str, name: str, password: str,
                bcrypt_rounds: int, birth_date: date | None = None, gender: str | None = None,
                mrn: str | None = None) -> User:
    """Create a login; a patient user also gets its FHIR Patient. Commits.

    Raises:
        InvalidInputError: bad role, e-mail or weak password; ConflictError: e-mail in use.
    """
    # `field` names the account form's field at fault (the form shows the error beside it).
    if role not in set(Role):
        raise InvalidInputError(f"role must be one of {', '.join(Role)}", field="role")
    try:
        email = checked_email(email)
    except InvalidInputError as err:
        raise InvalidInputError(str(err), field="email") from err
    if not name.strip():
        raise InvalidInputError("a name is required", field="name")
    limits.check_length("the name", name.strip(), limits.NAME)
    passwords.check_policy(password)
    if session.scalar(select(User.id).where(func.lower(User.email) == email.lower())):
        raise ConflictError("a user with this e-mail address already exists", field="email")
    user = User(email=email, name=name.strip(), role=role,
                password_hash=passwords.hash_password(password, rounds=bcrypt_rounds))
    if role == Role.PATIENT:
        given, _, family = name.strip().rpartition(" ")
        patient = _new_patient(session, PatientData(
            family_name=family, given_names=given, birth_date=birth_date, gender=gender,
            email=email, mrn=mrn, mrn_system=None))
        session.flush()
        user.patient_id = patient.id
        session.add(user)
        history.record(session, patient)
    else:
        session.add(user)
        history.record(session, user)
    session.commit()
    return user


def may_read_binary(session: Session, actor: Actor, blob: Blob) -> bool:
    """Staff read every stored file; a patient only the PDF of their own released report."""
    compartment = access.compartment(actor)
    if compartment is None:
        return True
    if blob.patient_id != compartment:
        return False
    return session.scalar(select(Report.id).where(Report.pdf_id == blob.id)) is not None
