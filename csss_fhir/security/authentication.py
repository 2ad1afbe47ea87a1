"""Login, one-time codes, and the Actor behind each request's bearer token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import g, render_template
from flask_jwt_extended import create_access_token, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from csss_fhir.extensions import Services
from csss_fhir.mail import outbox
from csss_fhir.models import ApiClient, RevokedToken, User, db, utcnow
from csss_fhir.security import access, audit, clients, lockout, otp, passwords
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import (
    NotAuthenticatedError,
    OtpInvalidError,
    OtpRequiredError,
    TooManyAttemptsError,
)

log = logging.getLogger(__name__)

WRONG_CREDENTIALS = "the username or password is wrong"


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    role: str
    scope: str | None = None


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


def _policy(svc: Services) -> lockout.Policy:
    return lockout.Policy(failures=svc.settings.lockout_failures,
                          minutes=svc.settings.lockout_minutes)


def _failed(session: Session, svc: Services, key: str, event: audit.Event,
            user: User | None, error: NotAuthenticatedError) -> NotAuthenticatedError:
    """Audit and count a failure, commit, and return the error to raise (429 if it locked)."""
    try:
        lockout.record_failure(session, key, _policy(svc))
    except TooManyAttemptsError as locked:
        audit.record(session, event, user=user)
        audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE,
                                          subtype_code=audit.LOCKED,
                                          description="account locked"), user=user)
        session.commit()
        log.warning("account locked after repeated failures",
                    extra={"user_id": user.id if user else None})
        return locked
    audit.record(session, event, user=user)
    session.commit()
    return error


def _checked_password(session: Session, svc: Services, username: object, password: object
                      ) -> tuple[User, str]:
    """The user behind a password sign-in, counting failures against the account's lock.

    Raises:
        TooManyAttemptsError: the account is locked (even for the right password);
        NotAuthenticatedError: wrong credentials.
    """
    key = lockout.account_key(svc.settings.secret_key or "", username)
    lockout.check(session, key)
    try:
        user = check_password(session, svc, username, password)
    except NotAuthenticatedError as err:
        known = _find_user(session, username)
        raise _failed(session, svc, key, audit.Event(
            audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE, subtype_code=audit.LOGIN,
            description="wrong credentials"), known, err) from None
    return user, key


def login(session: Session, svc: Services, *, username: object, password: object,
          code: object = None) -> TokenGrant:
    """Exchange credentials (and, for admins, a one-time code) for an access token.

    Raises:
        TooManyAttemptsError: the account is locked after repeated failures;
        NotAuthenticatedError: wrong credentials (OtpRequiredError / OtpInvalidError for the
            second factor).
    """
    user, key = _checked_password(session, svc, username, password)
    claims: dict[str, object] = {"role": user.role}
    if access.needs_second_factor(user.role):
        if code in (None, ""):
            raise OtpRequiredError("a one-time code is required for this account: request one "
                                   "with POST /auth/otp (or use your authenticator app) and "
                                   "send it as 'otp'")
        if not otp.verify_second_factor(session, user, code,
                                        secret_key=svc.settings.secret_key or ""):
            raise _failed(session, svc, key, audit.Event(
                audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE,
                subtype_code=audit.OTP_FAILED, description="wrong one-time code"), user,
                OtpInvalidError("the one-time code is wrong, used or expired"))
        claims["otp_at"] = int(utcnow().timestamp())
    lockout.record_success(session, key)
    audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.SUCCESS,
                                      subtype_code=audit.LOGIN), user=user)
    session.commit()
    minutes = svc.settings.access_token_minutes
    token = create_access_token(identity=user.id, additional_claims=claims,
                                expires_delta=timedelta(minutes=minutes))
    log.info("login succeeded", extra={"user_id": user.id})
    return TokenGrant(access_token=token, expires_in=minutes * 60, role=user.role)


def client_login(session: Session, svc: Services, *, client_id: object,
                 client_secret: object, scope: object = None) -> TokenGrant:
    """The client_credentials grant: a token carrying the client's SMART system scopes.

    Raises:
        TooManyAttemptsError, NotAuthenticatedError, InvalidInputError (unknown scope).
    """
    key = lockout.account_key(svc.settings.secret_key or "", f"client:{client_id}")
    lockout.check(session, key)
    try:
        client = clients.authenticate(session, client_id, client_secret)
    except NotAuthenticatedError as err:
        raise _failed(session, svc, key, audit.Event(
            audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE, subtype_code=audit.LOGIN,
            description="wrong client credentials"), None, err) from None
    scopes = clients.granted_scopes(client, scope)
    lockout.record_success(session, key)
    actor = Actor(role="system", client_id=client.id, name=client.name, scopes=frozenset(scopes))
    audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.SUCCESS,
                                      subtype_code=audit.LOGIN), actor=actor)
    session.commit()
    minutes = svc.settings.access_token_minutes
    token = create_access_token(identity=client.id, additional_claims={
        "role": "system", "scope": " ".join(scopes)}, expires_delta=timedelta(minutes=minutes))
    log.info("client token issued", extra={"client_id": client.id})
    return TokenGrant(access_token=token, expires_in=minutes * 60, role="system",
                      scope=" ".join(scopes))


def request_code(session: Session, svc: Services, *, username: object, password: object
                 ) -> None:
    """Check the password, then e-mail a fresh one-time code to the account's address."""
    user, _ = _checked_password(session, svc, username, password)
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
    outbox.enqueue(session, message, kind="otp")
    audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.SUCCESS,
                                      subtype_code=audit.OTP_ISSUED), user=user)
    session.commit()  # a job sends it (csss_fhir.jobs), never this request


def logout(session: Session) -> None:
    """Revoke this request's token until it would have expired (the deny-list)."""
    actor = current_actor()
    claims = get_jwt()
    jti = claims.get("jti")
    event = audit.Event(audit.USER_AUTHENTICATION, "E", audit.SUCCESS,
                        subtype_code=audit.LOGOUT)
    if isinstance(jti, str) and session.get(RevokedToken, jti) is None:
        expires = datetime.fromtimestamp(int(claims.get("exp", 0)), UTC)
        session.add(RevokedToken(jti=jti, expires_at=expires))
        try:
            session.flush()
        except IntegrityError:
            # A concurrent logout with the same token revoked it first: the same outcome.
            session.rollback()
    audit.record(session, event, actor=actor)
    session.commit()


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
    expired = NotAuthenticatedError("this token is no longer valid; sign in again")
    jti = claims.get("jti")
    if not isinstance(jti, str) or db.session.get(RevokedToken, jti) is not None:
        raise expired
    if claims.get("role") == "system":
        client = db.session.get(ApiClient, claims.get("sub"))
        if client is None or not client.active:
            raise expired
        # A scope taken from the client since the token was issued is gone at once.
        held = tuple(client.scopes.split())
        scopes = frozenset(s for s in str(claims.get("scope", "")).split()
                           if clients.covered(s, held))
        actor = Actor(role="system", client_id=client.id, name=client.name, scopes=scopes)
    else:
        user = db.session.get(User, claims.get("sub"))
        if user is None or not user.active or user.role != claims.get("role"):
            raise expired
        otp_at = claims.get("otp_at")
        actor = Actor(
            role=user.role, user_id=user.id, name=user.name, patient_id=user.patient_id,
            otp_verified_at=datetime.fromtimestamp(otp_at, UTC) if otp_at else None,
        )
    g.csss_actor = actor  # for the audit trail
    return actor


def second_factor_is_fresh(actor: Actor, *, minutes: int, now: datetime | None = None
                           ) -> bool:
    """Whether the actor's token got its second factor within the last `minutes`
    (OTP_STEP_UP_MINUTES): the step-up rule, which the admin's approval page also shows."""
    now = now or utcnow()
    return (actor.otp_verified_at is not None
            and now - actor.otp_verified_at <= timedelta(minutes=minutes))


def require_recent_second_factor(session: Session, svc: Services, actor: Actor,
                                 code: str | None, *, now: datetime | None = None) -> None:
    """Step-up: the actor's token got its OTP within OTP_STEP_UP_MINUTES, or `code` is valid.

    Raises:
        OtpRequiredError / OtpInvalidError.
    """
    now = now or utcnow()
    if code:
        user = session.get(User, actor.user_id)
        if user is None:
            raise OtpInvalidError("the one-time code is wrong, used or expired")
        key = lockout.account_key(svc.settings.secret_key or "", user.email)
        lockout.check(session, key, now=now)
        if not otp.verify_second_factor(session, user, code,
                                        secret_key=svc.settings.secret_key or "", now=now):
            raise _failed(session, svc, key, audit.Event(
                audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE,
                subtype_code=audit.OTP_FAILED, description="wrong step-up code"), user,
                OtpInvalidError("the one-time code is wrong, used or expired"))
        return
    if not second_factor_is_fresh(actor, minutes=svc.settings.otp_step_up_minutes, now=now):
        raise OtpRequiredError(
            f"approval needs a second factor from the last {svc.settings.otp_step_up_minutes} "
            "minutes: send a fresh one-time code as the 'otp' parameter"
        )
