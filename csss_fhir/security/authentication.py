"""Login, one-time codes, and the Actor behind each request's bearer token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import g, has_request_context, render_template, request
from flask_jwt_extended import create_access_token, get_jwt, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.exceptions import PyJWTError
from sqlalchemy import Row, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from csss_fhir.errors import CsssError, InvalidInputError
from csss_fhir.extensions import Services
from csss_fhir.mail import outbox
from csss_fhir.models import ApiClient, RevokedToken, User, db, utcnow
from csss_fhir.security import (
    access,
    audit,
    client_assertions,
    clients,
    lockout,
    otp,
    passwords,
    smart,
)
from csss_fhir.security import scopes as smart_scopes
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import (
    AccessDeniedError,
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
    patient: str | None = None  # a SMART app's launch context


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


def _client_address() -> str | None:
    """The caller's address (the TCP peer, or what TRUSTED_PROXY_HOPS proxies say)."""
    return request.remote_addr if has_request_context() else None


def _keys(svc: Services, username: object) -> lockout.Keys:
    return lockout.keys_for(svc.settings.secret_key or "", username, _client_address())


def _begin(session: Session, svc: Services, keys: lockout.Keys, *, commit: bool) -> None:
    """Refuse a locked-out source, then count this attempt before it is evaluated."""
    lockout.check(session, keys)
    lockout.begin_attempt(session, keys, _policy(svc))
    if commit:
        session.commit()


def _failed(session: Session, svc: Services, keys: lockout.Keys, event: audit.Event,
            user: User | None, error: NotAuthenticatedError) -> CsssError:
    """Audit a failure, commit, and return the error to raise (429 if it locked)."""
    try:
        lockout.record_failure(session, keys, _policy(svc))
    except TooManyAttemptsError as locked:
        audit.record(session, event, user=user)
        audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE,
                                          subtype_code=audit.LOCKED,
                                          description="account locked"), user=user)
        session.commit()
        log.warning("sign-in source locked after repeated failures",
                    extra={"user_id": user.id if user else None})
        return locked
    audit.record(session, event, user=user)
    session.commit()
    return error


def _checked_password(session: Session, svc: Services, username: object, password: object
                      ) -> tuple[User, lockout.Keys]:
    """The user behind a password sign-in, counting the attempt against its source.

    Raises:
        TooManyAttemptsError: this source is locked out (even for the right password), or
            the account is in its back-off;
        NotAuthenticatedError: wrong credentials.
    """
    keys = _keys(svc, username)
    _begin(session, svc, keys, commit=True)
    try:
        user = check_password(session, svc, username, password)
    except NotAuthenticatedError as err:
        known = _find_user(session, username)
        raise _failed(session, svc, keys, audit.Event(
            audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE, subtype_code=audit.LOGIN,
            description="wrong credentials"), known, err) from None
    return user, keys


def check_current_password(session: Session, svc: Services, user: User, password: object
                           ) -> None:
    """A signed-in user's current password (to change it), throttled like a sign-in.

    Raises:
        TooManyAttemptsError; NotAuthenticatedError: wrong password.
    """
    _, keys = _checked_password(session, svc, user.email, password)
    lockout.record_success(session, keys)


def login(session: Session, svc: Services, *, username: object, password: object,
          code: object = None) -> TokenGrant:
    """Exchange credentials (and, for admins, a one-time code) for an access token.

    Raises:
        TooManyAttemptsError: the account is locked after repeated failures;
        NotAuthenticatedError: wrong credentials (OtpRequiredError / OtpInvalidError for the
            second factor).
    """
    user, key = _checked_password(session, svc, username, password)
    claims: dict[str, object] = {}
    if access.needs_second_factor(user.role):
        if code in (None, ""):
            lockout.not_a_failure(session, key)
            session.commit()
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
    token = issue_token(user, otp_at=claims.get("otp_at"), minutes=minutes)
    log.info("login succeeded", extra={"user_id": user.id})
    return TokenGrant(access_token=token, expires_in=minutes * 60, role=user.role)


def issue_token(user: User, *, otp_at: object, minutes: int) -> str:
    """An access token for `user`: its role and security stamp (`gen`), and when its second
    factor was checked (`otp_at`, epoch seconds), which the step-up rule reads."""
    claims: dict[str, object] = {"role": user.role, "gen": user.token_generation}
    if otp_at:
        claims["otp_at"] = otp_at
    return create_access_token(identity=user.id, additional_claims=claims,
                               expires_delta=timedelta(minutes=minutes))


def client_login(session: Session, svc: Services, *, client_id: object,
                 client_secret: object, scope: object = None, assertion_type: object = None,
                 assertion: object = None, token_url: str = "") -> TokenGrant:
    """The client_credentials grant: a token carrying the client's SMART system scopes.
    The client authenticates with its secret or, when `assertion` is given, with a JWT
    signed by its key (`private_key_jwt`, checked against `token_url` as audience).

    Raises:
        TooManyAttemptsError, NotAuthenticatedError, InvalidInputError (a malformed
        assertion request), InvalidScopeError.
    """
    claimed = (client_assertions.claimed_client_id(assertion) if assertion is not None
               else None) or client_id
    key = _keys(svc, f"client:{claimed}")
    _begin(session, svc, key, commit=True)
    try:
        if assertion is not None:
            client = clients.authenticate_assertion(session, client_id, assertion_type,
                                                    assertion, token_url=token_url)
        else:
            client = clients.authenticate(session, client_id, client_secret)
        if client.redirect_uris:
            raise NotAuthenticatedError("this client is a SMART app: it gets tokens with the "
                                        "authorization code grant, for a user who approves it")
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
    user, keys = _checked_password(session, svc, username, password)
    minutes = svc.settings.otp_expire_minutes
    lockout.not_a_failure(session, keys)
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


def logout(session: Session, locations: list[str] | None = None) -> None:
    """Revoke this request's token until it would have expired (the deny-list)."""
    actor = current_actor(locations)
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


def current_actor(locations: list[str] | None = None) -> Actor:
    """The Actor behind this request's token, re-read from the database.

    `locations` narrows where the token may come from (the web UI passes ["cookies"]: a
    bearer header never signs a browser page in). A disabled user, one whose role changed,
    or one whose security stamp moved on (password change, disable-then-enable, role
    change) since the token was issued is refused at once: the token's claims are never
    trusted over the database.

    Raises:
        NotAuthenticatedError: no, invalid or expired token; unknown, disabled or re-roled user.
    """
    try:
        verify_jwt_in_request(locations=locations)
        claims = get_jwt()
    except (JWTExtendedException, PyJWTError) as err:
        raise NotAuthenticatedError(
            "a valid bearer token is required (Authorization: Bearer <token>)"
        ) from err
    expired = NotAuthenticatedError("this token is no longer valid; sign in again")
    jti = claims.get("jti")
    if not isinstance(jti, str):
        raise expired
    if claims.get("role") == "system":
        if db.session.get(RevokedToken, jti) is not None:
            raise expired
        client = db.session.get(ApiClient, claims.get("sub"))
        if client is None or not client.active:
            raise expired
        # A scope taken from the client since the token was issued is gone at once; the
        # rules read v1 scopes, so a v2 grant (`system/Patient.rs`) is read as its v1 form.
        held = tuple(client.scopes.split())
        scopes = smart_scopes.as_v1([s for s in str(claims.get("scope", "")).split()
                                     if clients.covered(s, held)])
        actor = Actor(role="system", client_id=client.id, name=client.name, scopes=scopes)
    else:
        user = _caller(jti, claims.get("sub"))
        if (user is None or user.revoked or not user.active or user.role != claims.get("role")
                or user.token_generation != claims.get("gen")):
            raise expired
        otp_at = claims.get("otp_at")
        app_read_types, app_writes = _app_permissions(claims)
        actor = Actor(
            role=user.role, user_id=user.id, name=user.name, patient_id=user.patient_id,
            otp_verified_at=datetime.fromtimestamp(otp_at, UTC) if otp_at else None,
            app_read_types=app_read_types, app_writes=app_writes,
        )
    g.csss_actor = actor  # for the audit trail
    return actor


def _caller(jti: str, user_id: object) -> Row | None:
    """The token's user as the checks need it, and whether the token was revoked: one
    query on every authenticated request (two primary-key reads cost twice the round trips
    and build a full User entity, password hash included, that nothing here uses)."""
    if not isinstance(user_id, str):
        return None
    revoked = select(RevokedToken.jti).where(RevokedToken.jti == jti).exists()
    return db.session.execute(
        select(User.id, User.name, User.role, User.active, User.token_generation,
               User.patient_id, revoked.label("revoked")).where(User.id == user_id)
    ).one_or_none()


def _app_permissions(claims: dict) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """For a SMART app's token (it names its `client_id`): the types it may read and what
    it may write (smart.py), after checking the app is still registered. An app writes
    only through /fhir, where each step and create checks its scope (scopes.py); a token
    whose scopes name no write is refused every write here, before the body is read.

    Raises:
        NotAuthenticatedError: the app was disabled; AccessDeniedError: a write it may not.
    """
    if "client_id" not in claims:
        return None, None
    client = db.session.get(ApiClient, claims["client_id"])
    if client is None or not client.active:
        raise NotAuthenticatedError("this app's token is no longer valid; launch it again")
    scope = str(claims.get("scope", ""))
    writes = smart.write_permissions(scope)
    reading = request.method in ("GET", "HEAD") or request.path.endswith("/_search") or \
        request.path == "/auth/logout"
    if not reading and not (writes and request.path.startswith("/fhir/")):
        raise AccessDeniedError("this app's token may only read: its scopes name no write "
                                f"({scope}); launch it with user/<Type>.c or .u scopes, or "
                                "sign in to the web application to take workflow steps")
    return smart.read_types(scope), writes


def app_login(session: Session, svc: Services, *, client_id: object, client_secret: object,
              code: object, redirect_uri: object, verifier: object,
              assertion_type: object = None, assertion: object = None,
              token_url: str = "") -> TokenGrant:
    """The authorization_code grant of a SMART app: redeem the code (PKCE S256) for a
    token that acts as the approving user, reading only what its scopes name. A
    confidential app authenticates as at client_credentials; a public one names itself.

    Raises:
        TooManyAttemptsError, NotAuthenticatedError (the client), InvalidGrantError (the
        code), InvalidInputError.
    """
    claimed = (client_assertions.claimed_client_id(assertion) if assertion is not None
               else None) or client_id
    key = _keys(svc, f"client:{claimed}")
    _begin(session, svc, key, commit=True)
    try:
        client = _app_client(session, client_id, client_secret, assertion_type, assertion,
                             token_url)
        grant = smart.exchange(session, client, code=code, redirect_uri=redirect_uri,
                               verifier=verifier)
    except NotAuthenticatedError as err:
        raise _failed(session, svc, key, audit.Event(
            audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE, subtype_code=audit.LOGIN,
            description="authorization code refused"), None, err) from None
    lockout.record_success(session, key)
    audit.record(session, audit.Event(audit.USER_AUTHENTICATION, "E", audit.SUCCESS,
                                      subtype_code=audit.LOGIN), user=grant.user)
    session.commit()
    minutes = svc.settings.access_token_minutes
    token = create_access_token(identity=grant.user.id, additional_claims={
        "role": grant.user.role, "gen": grant.user.token_generation,
        "client_id": grant.client.id, "scope": grant.scope},
        expires_delta=timedelta(minutes=minutes))
    log.info("app token issued", extra={"client_id": grant.client.id,
                                        "user_id": grant.user.id})
    return TokenGrant(access_token=token, expires_in=minutes * 60, role=grant.user.role,
                      scope=grant.scope, patient=grant.patient_id)


def _app_client(session: Session, client_id: object, client_secret: object,
                assertion_type: object, assertion: object, token_url: str) -> ApiClient:
    """The SMART app redeeming a code: authenticated if confidential, named if public."""
    if assertion is not None:
        client = clients.authenticate_assertion(session, client_id, assertion_type, assertion,
                                                token_url=token_url)
    elif client_secret is not None:
        client = clients.authenticate(session, client_id, client_secret)
    else:
        client = session.get(ApiClient, client_id) if isinstance(client_id, str) else None
        if client is None or not client.active or client.secret_hash or client.jwks:
            raise NotAuthenticatedError("a confidential app must authenticate (client "
                                        "secret or client assertion); a public app sends "
                                        "its client_id")
    if not client.redirect_uris:
        raise NotAuthenticatedError("this client is not a SMART app; it uses "
                                    "client_credentials")
    return client


def second_factor_is_fresh(actor: Actor, *, minutes: int, now: datetime | None = None
                           ) -> bool:
    """Whether the actor's token got its second factor within the last `minutes`
    (OTP_STEP_UP_MINUTES): the step-up rule, which the admin's approval page also shows."""
    now = now or utcnow()
    return (actor.otp_verified_at is not None
            and now - actor.otp_verified_at <= timedelta(minutes=minutes))


def second_factor_time_left(actor: Actor, *, minutes: int, now: datetime | None = None
                            ) -> timedelta:
    """How much longer the actor's step-up window stays open (zero once it has lapsed):
    the same rule as `second_factor_is_fresh`, for pages that tell the admin the time left."""
    now = now or utcnow()
    if actor.otp_verified_at is None:
        return timedelta(0)
    return max(timedelta(0), actor.otp_verified_at + timedelta(minutes=minutes) - now)


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
        key = _keys(svc, user.email)
        _begin(session, svc, key, commit=False)
        if not otp.verify_second_factor(session, user, code,
                                        secret_key=svc.settings.secret_key or "", now=now):
            raise _failed(session, svc, key, audit.Event(
                audit.USER_AUTHENTICATION, "E", audit.MINOR_FAILURE,
                subtype_code=audit.OTP_FAILED, description="wrong step-up code"), user,
                OtpInvalidError("the one-time code is wrong, used or expired"))
        lockout.not_a_failure(session, key)
        return
    if actor.role == "admin" and actor.user_id is None and actor.client_id is None:
        return  # the command-line operator (security/cli.py), who holds the database itself
    if not second_factor_is_fresh(actor, minutes=svc.settings.otp_step_up_minutes, now=now):
        raise OtpRequiredError(
            f"this action needs a second factor from the last "
            f"{svc.settings.otp_step_up_minutes} minutes: send a fresh one-time code as the "
            "'otp' parameter"
        )


def renew_second_factor(session: Session, svc: Services, actor: Actor, code: str | None
                        ) -> str:
    """Check a fresh one-time code and return a new access token whose step-up window
    starts now ("sudo mode" for the web UI). Commits.

    Raises:
        InvalidInputError (no code), OtpInvalidError, TooManyAttemptsError.
    """
    if not code:
        raise InvalidInputError("enter a one-time code from your authenticator, or have one "
                                "e-mailed to you")
    require_recent_second_factor(session, svc, actor, code)
    user = session.get(User, actor.user_id)
    session.commit()
    return issue_token(user, otp_at=int(utcnow().timestamp()),
                       minutes=svc.settings.access_token_minutes)
