"""User accounts as administrators and users manage them: list, create, disable, change
role, change one's own password.

`registration.create_user` makes the account; this module adds who may manage accounts and the
changes after creation. A disabled or re-roled user's tokens stop working at once, because
`current_actor` re-reads the user on every request.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from csss_fhir import history, registration
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.models import Role, User
from csss_fhir.security import access, authentication, passwords
from csss_fhir.security.actor import Actor

log = logging.getLogger(__name__)

STAFF_ROLES = (Role.DOCTOR, Role.PHARMACIST, Role.ADMIN)


def _user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise ResourceNotFoundError(f"user {user_id} does not exist")
    return user


def list_users(session: Session, actor: Actor, *, text: str = "", role: str = ""
               ) -> list[User]:
    access.require_user_management(actor)
    statement = select(User).order_by(User.role, func.lower(User.name))
    if role:
        statement = statement.where(User.role == role)
    if text.strip():
        pattern = f"%{text.strip().lower()}%"
        statement = statement.where(or_(func.lower(User.name).like(pattern),
                                        func.lower(User.email).like(pattern)))
    return list(session.scalars(statement.limit(500)))


def create(session: Session, svc: Services, actor: Actor, *, email: str, role: str, name: str,
           password: str, **patient_fields: object) -> User:
    """Create an account (admins only); see `registration.create_user` for what it refuses."""
    access.require_user_management(actor)
    user = registration.create_user(
        session, email=email, role=role, name=name, password=password,
        bcrypt_rounds=svc.settings.bcrypt_rounds, **patient_fields)
    log.info("user created", extra={"user_id": user.id, "by": actor.user_id})
    return user


def set_active(session: Session, actor: Actor, user_id: str, active: bool) -> User:
    """Enable or disable an account; an administrator cannot disable their own."""
    access.require_user_management(actor)
    user = _user(session, user_id)
    if user.id == actor.user_id and not active:
        raise InvalidInputError("you cannot disable your own account")
    if user.active != active:
        user.active = active
        _record(session, user)
        session.commit()
        log.info("user %s", "enabled" if active else "disabled", extra={"user_id": user.id})
    return user


def change_role(session: Session, actor: Actor, user_id: str, role: str) -> User:
    """Move a staff account to another staff role.

    Raises:
        InvalidInputError: not a staff role, a patient account (which has a Patient record
            of its own), or the administrator's own account.
    """
    access.require_user_management(actor)
    user = _user(session, user_id)
    if role not in STAFF_ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(STAFF_ROLES)}")
    if user.role == Role.PATIENT:
        raise InvalidInputError("a patient account cannot become a staff account; "
                                "create a separate staff account")
    if user.id == actor.user_id:
        raise InvalidInputError("you cannot change your own role")
    if user.role != role:
        user.role = role
        _record(session, user)
        session.commit()
        log.info("user role changed", extra={"user_id": user.id})
    return user


def change_password(session: Session, svc: Services, actor: Actor, *, current: str,
                    new: str) -> None:
    """Change the signed-in user's own password after checking the current one.

    Raises:
        NotAuthenticatedError: the current password is wrong; InvalidInputError: the new
            one fails the password policy.
    """
    user = _user(session, actor.user_id or "")
    authentication.check_password(session, svc, user.email, current)
    passwords.check_policy(new)
    if new == current:
        raise InvalidInputError("the new password must differ from the current one")
    user.password_hash = passwords.hash_password(new, rounds=svc.settings.bcrypt_rounds)
    _record(session, user)
    session.commit()
    log.info("password changed", extra={"user_id": user.id})


def _record(session: Session, user: User) -> None:
    """Staff accounts are served as Practitioner: keep their versions for vread."""
    if user.role != Role.PATIENT:
        history.record(session, user)
    else:
        session.flush()
