"""Which rows a caller may see: the one visibility check for search, _include, _revinclude
and reads by id.

Two rules, each written once and applied both in SQL (`Viewer.where`, before a query runs)
and to loaded rows (`Viewer.sees`, for rows reached through a reference):

- the Patient compartment: a patient sees only rows linked to their own Patient
  (`ServedType.patient_column`); rows linked to no patient (staff directory, devices) are
  open to everyone who may read the type;
- patients' user accounts are never served as Practitioner or PractitionerRole.

`may_read` (from security/access.py) says which types the caller may read at all; the API
checks the searched type itself, so here it only filters rows added by _include/_revinclude.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from csss_fhir.models import Role, User
from csss_fhir.resources import SERVED, type_of


@dataclass(frozen=True)
class Viewer:
    """The caller as search sees them.

    compartment: the only Patient id whose rows they may see; None for no restriction.
    may_read: which FHIR types they may read; None for every type.
    """

    compartment: str | None = None
    may_read: Callable[[str], bool] | None = None

    def where(self, resource_type: str, model: type) -> list[ColumnElement[bool]]:
        """SQL conditions that keep a query of `model` (served as `resource_type`) visible."""
        conditions: list[ColumnElement[bool]] = []
        if model is User:
            conditions.append(User.role != Role.PATIENT)
        column = SERVED[resource_type].patient_column
        if self.compartment is not None and column is not None:
            conditions.append(getattr(model, column) == self.compartment)
        return conditions

    def sees(self, row: Any, resource_type: str | None = None) -> bool:
        """Whether a loaded row is visible: the same rules as `where`, plus `may_read`."""
        resource_type = resource_type or type_of(row)
        if self.may_read is not None and not self.may_read(resource_type):
            return False
        if isinstance(row, User) and row.role == Role.PATIENT:
            return False
        column = SERVED[resource_type].patient_column
        return self.compartment is None or column is None or \
            getattr(row, column) == self.compartment
