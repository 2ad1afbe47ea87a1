"""Which role's dashboard each page belongs to: the UI's only role rule, a navigation one.

Whether an actor may take a step, or read a patient's data, is still decided by workflow/
and security/ when the page calls them; this table only sends a pharmacist who opens a
doctor's page to a clear 403 page instead of a half-working one. It is derived from the
workflow's rule table, so a role that gains a step gains its dashboard.
"""

from __future__ import annotations

from csss_fhir.models import Role
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError
from csss_fhir.web import session
from csss_fhir.workflow.states import RULES, Step

OWNERS: dict[str, frozenset[str]] = {
    "patient": frozenset({Role.PATIENT}),  # a patient's own scans: the patient compartment
    "doctor": RULES[Step.VERIFY].roles,
    "pharmacist": RULES[Step.PHARMACY_REVIEW].roles,
    "admin": RULES[Step.APPROVE].roles,
}

HOME = {
    Role.PATIENT: "web_patient.dashboard",
    Role.DOCTOR: "web_doctor.worklist",
    Role.PHARMACIST: "web_pharmacist.queue",
    Role.ADMIN: "web_admin.dashboard",
}


def signed_in_as(dashboard: str) -> Actor:
    """The signed-in actor, if `dashboard` is theirs.

    Raises:
        NotAuthenticatedError: not signed in; AccessDeniedError: another role's page.
    """
    actor = session.signed_in()
    if actor.role not in OWNERS[dashboard]:
        raise AccessDeniedError(
            f"this page belongs to the {dashboard} dashboard; you are signed in as "
            f"{actor.role}")
    return actor


def home_endpoint(role: str) -> str:
    return HOME.get(role, "web_auth.login_form")
