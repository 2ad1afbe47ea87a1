"""Who signs in, and how: users, system clients, one-time codes, TOTP, lockout, logout.

Secrets are never stored in the clear: codes and client secrets are hashed, TOTP secrets
encrypted, and throttled usernames keyed by an HMAC.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from csss_fhir.models.base import UTCDateTime, Versioned, db, new_id, utcnow

if TYPE_CHECKING:
    from csss_fhir.models.clinical import Patient


class User(Versioned, db.Model):
    """A person who logs in. Staff users are served as Practitioner resources."""

    __tablename__ = "user_account"

    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # The security stamp: moves on with a password change, a disable/enable or a role
    # change, and every token issued before that is refused (security/authentication.py).
    token_generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0,
                                                  server_default="0")
    patient_id: Mapped[str | None] = mapped_column(ForeignKey("patient.id"), unique=True)

    patient: Mapped[Patient | None] = relationship()


class OtpCode(db.Model):
    """An e-mailed one-time code, stored only as a hash."""

    __tablename__ = "otp_code"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False, index=True)
    code_hash: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TotpCredential(db.Model):
    """A user's TOTP authenticator (RFC 6238): the secret encrypted, the last step used."""

    __tablename__ = "totp_credential"

    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    secret_encrypted: Mapped[str] = mapped_column(String(255), nullable=False)
    last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class AuthThrottle(db.Model):
    """Failed sign-in attempts for one account key, and the lock they led to.

    The key is an HMAC of the normalised username, so unknown usernames lock exactly like
    real ones (the answer never tells whether an account exists).
    """

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lock_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class RevokedToken(db.Model):
    """A JWT that was logged out before it expired (kept until it would have expired)."""

    __tablename__ = "revoked_token"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class ApiClient(db.Model):
    """A hospital system that signs in with client_credentials: with a secret (stored
    hashed) or, per SMART Backend Services, with JWTs signed by a key in its public JWKS."""

    __tablename__ = "api_client"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), nullable=False, unique=True)
    secret_hash: Mapped[str | None] = mapped_column(String(128))  # None: JWKS or public
    jwks: Mapped[dict | None] = mapped_column(JSON)  # public keys only
    # A SMART app (authorization code): where it may be sent back to, space-separated.
    redirect_uris: Mapped[str | None] = mapped_column(String(2000))
    scopes: Mapped[str] = mapped_column(String(1000), nullable=False)  # space-separated
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)


class UsedClientAssertion(db.Model):
    """A client assertion's `jti`, kept until the assertion expires so it is never
    accepted twice (SMART Backend Services: replay protection)."""

    __tablename__ = "used_client_assertion"

    client_id: Mapped[str] = mapped_column(ForeignKey("api_client.id"), primary_key=True)
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class AuthorizationCode(db.Model):
    """A SMART App Launch authorization code: one use, a minute or two, its hash stored."""

    __tablename__ = "authorization_code"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("api_client.id"), nullable=False)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    redirect_uri: Mapped[str] = mapped_column(String(1000), nullable=False)
    scope: Mapped[str] = mapped_column(String(1000), nullable=False)
    code_challenge: Mapped[str] = mapped_column(String(128), nullable=False)
    patient_id: Mapped[str | None] = mapped_column(String(36))  # the launch context
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)


class LaunchContext(db.Model):
    """An EHR launch: the patient a signed-in user opened an app for, named by an opaque
    `launch` value (its hash stored) that the app hands back at /auth/authorize."""

    __tablename__ = "launch_context"

    launch_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("user_account.id"), nullable=False)
    patient_id: Mapped[str] = mapped_column(String(36), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, index=True)
