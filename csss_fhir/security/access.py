"""Who may read which FHIR types, and which patient's data: one rule for every read route.

Staff read everything clinical; a patient reads only their own Patient, ImagingStudy, Task,
released DiagnosticReport and its PDF — never an Observation (the preliminary AI result is
one), and no staff record: Practitioner and PractitionerRole carry the staff's sign-in
e-mail addresses, so a patient can neither list them nor read one (the report names its
doctor and approver by display name). A row outside a caller's compartment is reported as
not found, so ids leak nothing. Also which roles must prove a second factor to sign in.
"""

from __future__ import annotations

import enum

from csss_fhir.security import scopes
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError


class Role(enum.StrEnum):
    """The role a user signs in with; system clients act as "system" with scopes instead."""

    PATIENT = "patient"
    DOCTOR = "doctor"
    PHARMACIST = "pharmacist"
    ADMIN = "admin"

PATIENT_READABLE = frozenset({"Patient", "ImagingStudy", "Task", "DiagnosticReport",
                              "Binary", "Device"})
# A tuple, not a set: clients.py lists the system scopes in this order.
STAFF_READABLE_TYPES = ("Patient", "Practitioner", "PractitionerRole", "ImagingStudy",
                        "Observation", "MedicationRequest", "DiagnosticReport", "Task",
                        "Device", "Provenance", "Binary")
STAFF_READABLE = frozenset(STAFF_READABLE_TYPES)
# The audit trail: admins, and system clients holding exactly `system/AuditEvent.read`
# (a `system/*.read` client sees clinical data, not who looked at it).
AUDIT = "AuditEvent"
CREATE_ROLES = {
    "Patient": frozenset({"admin", "doctor"}),
    # MedicationRequest creation is the workflow's "prescribe" step: its rule is in workflow/.
}


def require_read(actor: Actor, resource_type: str) -> None:
    """Raise AccessDeniedError unless the actor may read resources of this type at all."""
    allowed = PATIENT_READABLE if actor.is_patient else STAFF_READABLE
    if actor.role == "admin":
        allowed = STAFF_READABLE | {AUDIT}
    if actor.role == "system":
        allowed = STAFF_READABLE if _scope_allows(actor, resource_type, "read") else frozenset()
        if resource_type == AUDIT and f"system/{AUDIT}.read" in actor.scopes:
            allowed = frozenset({AUDIT})
    if resource_type not in allowed:
        raise AccessDeniedError(f"the {actor.role} role may not read {resource_type} resources")
    app = actor.app_read_types
    if app is not None and resource_type not in app and (resource_type == AUDIT
                                                          or "*" not in app):
        raise AccessDeniedError(f"this app's token has no scope to read {resource_type}; "
                                f"ask for user/{resource_type}.rs")


def require_create(actor: Actor, resource_type: str) -> None:
    if actor.role == "system":
        if _scope_allows(actor, resource_type, "write"):
            return
    elif actor.role in CREATE_ROLES.get(resource_type, frozenset()):
        scopes.require_app_permission(actor, resource_type, "c",
                                      doing=f"create {resource_type} resources")
        return
    raise AccessDeniedError(f"the {actor.role} role may not create {resource_type} resources")


def compartment(actor: Actor) -> str | None:
    """The only Patient id whose data this actor may see, or None for no restriction."""
    if actor.is_patient:
        return actor.patient_id or "-"
    return None


def _scope_allows(actor: Actor, resource_type: str, action: str) -> bool:
    return bool({f"system/{resource_type}.{action}", f"system/*.{action}"} & actor.scopes)


USER_MANAGERS = frozenset({"admin"})
ROLES_NEEDING_OTP = frozenset({Role.ADMIN})


def needs_second_factor(role: str) -> bool:
    """Whether this role signs in with a one-time code as well as a password."""
    return role in ROLES_NEEDING_OTP


def require_user_management(actor: Actor) -> None:
    """Only administrators create, disable and re-role user accounts."""
    if actor.role not in USER_MANAGERS:
        raise AccessDeniedError(f"the {actor.role} role may not manage user accounts")
