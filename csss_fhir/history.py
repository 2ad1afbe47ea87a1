"""Keeps each version of each served resource, as emitted, for vread and `_history`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir import resources
from csss_fhir.models import ResourceVersion, User


def record(session: Session, *rows: Any) -> None:
    """Flush, then store the current FHIR JSON of each row under its new version.

    Call in the transaction that changed the rows, after the change, before commit.
    """
    session.flush()
    for row in rows:
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


def version(session: Session, resource_type: str, resource_id: str,
            version_id: int) -> bytes | None:
    return session.scalar(
        select(ResourceVersion.body).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id,
            ResourceVersion.version_id == version_id,
        )
    )


def versions(session: Session, resource_type: str, resource_id: str) -> list[ResourceVersion]:
    return list(session.scalars(
        select(ResourceVersion).where(
            ResourceVersion.resource_type == resource_type,
            ResourceVersion.resource_id == resource_id,
        ).order_by(ResourceVersion.version_id.desc())
    ))
