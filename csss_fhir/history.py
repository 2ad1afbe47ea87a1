"""Keeps each version of each served resource, as emitted, for vread and `_history`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import resources
from csss_fhir.models import ResourceVersion, User

# Types whose rows never change after they are written: their one version is the row
# itself, rendered when asked for, not stored twice (the audit trail writes a row per
# patient per request; storing each as JSON too doubled its cost).
WRITE_ONCE = frozenset({"AuditEvent"})


def record(session: Session, *rows: Any) -> None:
    """Flush, then store the current FHIR JSON of each row under its new version.

    Call in the transaction that changed the rows, after the change, before commit.
    """
    session.flush()
    for row in rows:
        if resources.type_of(row) in WRITE_ONCE:
            continue
        resource = resources.render(row)
        session.add(ResourceVersion(
            resource_type=resource.get_resource_type(), resource_id=row.id,
            version_id=row.version_id, body=resource.model_dump_json().encode(),
        ))
        if isinstance(row, User) and row.role != "patient":
            role = resources.SERVED["PractitionerRole"].render(row)
            session.add(ResourceVersion(
                resource_type="PractitionerRole", resource_id=row.id,
                version_id=row.version_id, body=role.model_dump_json().encode(),
            ))


def _write_once(session: Session, resource_type: str, resource_id: str
                ) -> ResourceVersion | None:
    for model in resources.SERVED[resource_type].models:
        row = session.get(model, resource_id)
        if row is not None:
            return ResourceVersion(resource_type=resource_type, resource_id=row.id,
                                   version_id=row.version_id,
                                   body=resources.render(row).model_dump_json().encode())
    return None


def version(session: Session, resource_type: str, resource_id: str,
            version_id: int) -> bytes | None:
    if resource_type in WRITE_ONCE:
        only = _write_once(session, resource_type, resource_id)
        return only.body if only is not None and only.version_id == version_id else None
    return session.scalar(
        select(ResourceVersion.body).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id,
            ResourceVersion.version_id == version_id,
        )
    )


def versions(session: Session, resource_type: str, resource_id: str) -> list[ResourceVersion]:
    if resource_type in WRITE_ONCE:
        only = _write_once(session, resource_type, resource_id)
        return [only] if only is not None else []
    return list(session.scalars(
        select(ResourceVersion).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id,
        ).order_by(ResourceVersion.version_id.desc())
    ))
