"""The authenticated caller of a request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (with a role) or a registered system client (with scopes)."""

    role: str  # patient | doctor | pharmacist | admin | system
    user_id: str | None = None
    name: str = ""
    patient_id: str | None = None  # set for patients: their own compartment
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    otp_verified_at: datetime | None = None  # when this token's second factor was checked
    # A SMART app acting for the user: the types its token may read (`*`: all) and what it
    # may write (`Observation.c`, `*.u`); None for the user's own sign-in (security/smart.py).
    app_read_types: frozenset[str] | None = None
    app_writes: frozenset[str] | None = None

    @property
    def is_patient(self) -> bool:
        return self.role == "patient"

    @property
    def reference(self) -> str | None:
        """The FHIR reference of the person acting ("Patient/…" or "Practitioner/…")."""
        if self.role == "patient" and self.patient_id:
            return f"Patient/{self.patient_id}"
        if self.user_id:
            return f"Practitioner/{self.user_id}"
        return None
