"""Login, one-time codes, and the Actor behind each request's bearer token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import render_template
from flask_jwt_extended import create_access_token, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from csss_fhir.mail import outbox
from csss_fhir.models import Role, User, db, utcnow
from csss_fhir.security import otp, passwords
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import NotAuthenticatedError, OtpInvalidError, OtpRequiredError
from csss_fhir.services import Services

log = logging.getLogger(__name__)

ROLES_NEEDING_OTP = frozenset({Role.ADMIN})
WRONG_CREDENTIALS = "the username or password is wrong"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    role: str


def _find_user(session: Session, username: object) -> User | None:
    if not isinstance(username, str) or not username.strip():
        return None
    return session.scalar(
        select(User).where(func.lower(User.email) == username.strip().lower())
    )


def check_password(session: Session, svc: Services, username: object, password: object
                   ) -> User:
    """The active user with these credentials, with the same answer and cost otherwise.

    Raises:
        NotAuthenticatedError: unknown user, wrong password, or disabled account.
    """
    user = _find_user(session, username)
    rounds = svc.settings.bcrypt_rounds
    if not isinstance(password, str) or not password:
        passwords.verify_password("", None, rounds=rounds)
        raise NotAuthenticatedError(WRONG_CREDENTIALS)
    ok = passwords.verify_password(password, user.password_hash if user else None, rounds=rounds)
    if not ok or user is None or not user.active:
        log.info("login refused")
        raise NotAuthenticatedError(WRONG_CREDENTIALS)
    return user


def login(session: Session, svc: Services, *, username: object, password: object,
          code: object = None) -> TokenGrant:
    """Exchange credentials (and, for admins, a one-time code) for an access token.

    Raises:
        NotAuthenticatedError: wrong credentials (OtpRequiredError / OtpInvalidError for the
            second factor).
    """
    user = check_password(session, svc, username, password)
    claims: dict[str, object] = {"role": user.role}
    if user.role in ROLES_NEEDING_OTP:
        if code in (None, ""):
            raise OtpRequiredError("a one-time code is required for this account: request one "
                                   "with POST /auth/otp and send it as 'otp'")
        if not otp.consume_code(session, user, str(code),
                                secret_key=svc.settings.secret_key or ""):
            session.commit()
            raise OtpInvalidError("the one-time code is wrong, used or expired")
        claims["otp_at"] = int(utcnow().timestamp())
    session.commit()
    minutes = svc.settings.access_token_minutes
    token = create_access_token(identity=user.id, additional_claims=claims,
                                expires_delta=timedelta(minutes=minutes))
    log.info("login succeeded", extra={"user_id": user.id})
    return TokenGrant(access_token=token, expires_in=minutes * 60, role=user.role)


def request_code(session: Session, svc: Services, *, username: object, password: object
                 ) -> None:
    """Check the password, then e-mail a fresh one-time code to the account's address."""
    user = check_password(session, svc, username, password)
    minutes = svc.settings.otp_expire_minutes
    code = otp.issue_code(session, user, secret_key=svc.settings.secret_key or "",
                          lifetime=timedelta(minutes=minutes))
    context = {"name": user.name, "code": code, "minutes": minutes,
               "hospital": svc.settings.hospital_name}
    message = outbox.compose(
        sender=svc.settings.mail_from, recipient=user.email,
        subject=f"Your {svc.settings.hospital_name} sign-in code",
        text=render_template("mail/otp.txt", **context),
        html=render_template("mail/otp.html", **context),
    )
    row = outbox.enqueue(session, message, kind="otp")
    session.commit()
    outbox.deliver(session, svc.mail, [row.id])


def current_actor() -> Actor:
    """The Actor behind this request's bearer token, re-read from the database.

    A disabled user, or one whose role changed since the token was issued, is refused at
    once: the token's claims are never trusted over the database.

    Raises:
        NotAuthenticatedError: no, invalid or expired token; unknown, disabled or re-roled user.
    """
    try:
        verify_jwt_in_request()
        claims = get_jwt()
    except (JWTExtendedException, PyJWTError) as err:
        raise NotAuthenticatedError(
            "a valid bearer token is required (Authorization: Bearer <token>)"
        ) from err
    user = db.session.get(User, claims.get("sub"))
    if user is None or not user.active or user.role != claims.get("role"):
        raise NotAuthenticatedError("this token is no longer valid; sign in again")
    otp_at = claims.get("otp_at")
    return Actor(
        role=user.role, user_id=user.id, name=user.name, patient_id=user.patient_id,
        otp_verified_at=datetime.fromtimestamp(otp_at, UTC) if otp_at else None,
    )


def require_recent_second_factor(session: Session, svc: Services, actor: Actor,
                                 code: str | None, *, now: datetime | None = None) -> None:
    """Step-up: the actor's token got its OTP within OTP_STEP_UP_MINUTES, or `code` is valid.

    Raises:
        OtpRequiredError / OtpInvalidError.
    """
    now = now or utcnow()
    window = timedelta(minutes=svc.settings.otp_step_up_minutes)
    if code:
        user = session.get(User, actor.user_id)
        if user is None or not otp.consume_code(session, user, code,
                                                secret_key=svc.settings.secret_key or ""):
            session.commit()
            raise OtpInvalidError("the one-time code is wrong, used or expired")
        return
    if actor.otp_verified_at is None or now - actor.otp_verified_at > window:
        raise OtpRequiredError(
            f"approval needs a second factor from the last {svc.settings.otp_step_up_minutes} "
            "minutes: send a fresh one-time code as the 'otp' parameter"
        )
