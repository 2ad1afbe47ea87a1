"""User accounts as administrators and users manage them: list, create, disable, change
role, change one's own password.

`registration.create_user` makes the account; this module adds who may manage accounts and the
changes after creation. Every account-security action (create, change a role, disable or
enable, reset an authenticator) needs a fresh second factor: the same step-up rule as
`$approve` (`authentication.require_recent_second_factor`). A password change, a
disable-then-enable or a role change moves the user's security stamp (`token_generation`):
every token issued before it is refused at once, because `current_actor` re-reads the user
on every request.
"""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from csss_fhir import history, registration
from csss_fhir.errors import InvalidInputError, ResourceNotFoundError
from csss_fhir.extensions import Services
from csss_fhir.models import Role, User
from csss_fhir.security import access, authentication, passwords, totp
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


def _require_sudo(session: Session, svc: Services, actor: Actor, code: str | None) -> None:
    access.require_user_management(actor)
    authentication.require_recent_second_factor(session, svc, actor, code)


def create(session: Session, svc: Services, actor: Actor, *, email: str, role: str, name: str,
           password: str, code: str | None = None, **patient_fields: object) -> User:
    """Create an account (admins only, with a fresh second factor); see
    `registration.create_user` for what it refuses."""
    _require_sudo(session, svc, actor, code)
    user = registration.create_user(
        session, email=email, role=role, name=name, password=password,
        bcrypt_rounds=svc.settings.bcrypt_rounds, **patient_fields)
    log.info("user created", extra={"user_id": user.id, "by": actor.user_id})
    return user


def set_active(session: Session, svc: Services, actor: Actor, user_id: str, active: bool, *,
               code: str | None = None) -> User:
    """Enable or disable an account; an administrator cannot disable their own."""
    _require_sudo(session, svc, actor, code)
    user = _user(session, user_id)
    if user.id == actor.user_id and not active:
        raise InvalidInputError("you cannot disable your own account")
    if user.active != active:
        user.active = active
        user.token_generation += 1
        _record(session, user)
        session.commit()
        log.info("user %s", "enabled" if active else "disabled", extra={"user_id": user.id})
    return user


def change_role(session: Session, svc: Services, actor: Actor, user_id: str, role: str, *,
                code: str | None = None) -> User:
    """Move a staff account to another staff role.

    Raises:
        InvalidInputError: not a staff role, a patient account (which has a Patient record
            of its own), or the administrator's own account.
    """
    _require_sudo(session, svc, actor, code)
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
        user.token_generation += 1
        _record(session, user)
        session.commit()
        log.info("user role changed", extra={"user_id": user.id})
    return user


def change_password(session: Session, svc: Services, actor: Actor, *, current: str,
                    new: str) -> str:
    """Change the signed-in user's own password after checking the current one (throttled
    like a sign-in). Every older token ends; return the caller's new one.

    Raises:
        NotAuthenticatedError: the current password is wrong; TooManyAttemptsError: too
            many wrong ones; InvalidInputError: the new one fails the password policy.
    """
    user = _user(session, actor.user_id or "")
    authentication.check_current_password(session, svc, user, current)
    passwords.check_policy(new)
    if new == current:
        raise InvalidInputError("the new password must differ from the current one")
    user.password_hash = passwords.hash_password(new, rounds=svc.settings.bcrypt_rounds)
    user.token_generation += 1
    _record(session, user)
    session.commit()
    log.info("password changed", extra={"user_id": user.id})
    otp_at = actor.otp_verified_at
    return authentication.issue_token(user, otp_at=int(otp_at.timestamp()) if otp_at else None,
                                      minutes=svc.settings.access_token_minutes)


def reset_authenticator(session: Session, svc: Services, actor: Actor, user_id: str, *,
                        code: str | None = None) -> User:
    """Remove another user's TOTP authenticator: its owner enrols a new one on their own
    account page (only the owner ever sees a secret). Until then e-mailed codes work.
    """
    _require_sudo(session, svc, actor, code)
    user = _user(session, user_id)
    totp.remove(session, user)
    session.commit()
    log.info("authenticator reset", extra={"user_id": user.id})
    return user


def enrol_own_authenticator(session: Session, svc: Services, actor: Actor, *,
                            code: str | None = None) -> str:
    """Give the signed-in user a new TOTP authenticator (fresh second factor required) and
    return its otpauth:// URI, to show to this user only, once.

    Raises:
        OtpRequiredError / OtpInvalidError; InvalidInputError: a role without a second factor.
    """
    authentication.require_recent_second_factor(session, svc, actor, code)
    user = _user(session, actor.user_id or "")
    return totp.enrol(session, user, secret_key=svc.settings.secret_key or "",
                      issuer=svc.settings.hospital_name)


def _record(session: Session, user: User) -> None:
    """Staff accounts are served as Practitioner: keep their versions for vread."""
    if user.role != Role.PATIENT:
        history.record(session, user)
    else:
        session.flush()
