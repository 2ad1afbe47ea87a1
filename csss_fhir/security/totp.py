"""TOTP authenticators (RFC 6238, pyotp) for admins: enrolment and replay-safe checks.

The shared secret must be readable to check a code, so it is stored encrypted (Fernet, with
a key derived from SECRET_KEY), never in the clear. Each accepted time-step is remembered:
a code, or any code of an earlier step, is refused after one use (RFC 6238 section 5.2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import TotpCredential, User, utcnow
from csss_fhir.security.access import needs_second_factor

# Steps either side of now that are accepted: clocks drift, and people type slowly.
VALID_WINDOW = 1


def _fernet(secret_key: str) -> Fernet:
    digest = hashlib.sha256(f"csss-totp:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def enrol(session: Session, user: User, *, secret_key: str, issuer: str) -> str:
    """Give `user` a new TOTP secret (replacing any earlier one), commit, and return its
    otpauth:// URI, which the caller shows once (as text or a QR code) and never logs.

    Raises:
        InvalidInputError: the user's role has no second factor (authenticators are for
            the roles that need one).
    """
    if not needs_second_factor(user.role):
        raise InvalidInputError(
            f"authenticators are for admins (who need a second factor); this user is a "
            f"{user.role}")
    secret = pyotp.random_base32()
    encrypted = _fernet(secret_key).encrypt(secret.encode()).decode("ascii")
    credential = session.get(TotpCredential, user.id)
    if credential is None:
        session.add(TotpCredential(user_id=user.id, secret_encrypted=encrypted))
    else:
        credential.secret_encrypted, credential.last_step = encrypted, None
    session.commit()
    return pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=issuer)


def remove(session: Session, user: User) -> None:
    """Forget the user's authenticator (a reset: the owner enrols a new one). Caller commits."""
    credential = session.get(TotpCredential, user.id)
    if credential is not None:
        session.delete(credential)


def is_enrolled(session: Session, user: User) -> bool:
    return session.get(TotpCredential, user.id) is not None


def verify(session: Session, user: User, code: str, *, secret_key: str,
           now: datetime | None = None) -> bool:
    """Accept a current code once; refuse a replayed or older time-step. Caller commits."""
    credential = session.get(TotpCredential, user.id)
    # isascii: str.isdigit() also accepts full-width and other Unicode digits.
    if credential is None or not (isinstance(code, str) and len(code) == 6 and code.isascii()
                                  and code.isdigit()):
        return False
    try:
        secret = _fernet(secret_key).decrypt(credential.secret_encrypted.encode()).decode()
    except InvalidToken:  # SECRET_KEY changed since enrolment: the user must enrol again
        return False
    totp = pyotp.TOTP(secret)
    now = now or utcnow()
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if not hmac.compare_digest(totp.generate_otp(step), code):
            continue
        # Conditional update: of two requests racing with one code, only one succeeds, and
        # no step at or before the last accepted one is ever accepted again.
        claimed = session.execute(
            update(TotpCredential)
            .where(TotpCredential.user_id == user.id,
                   or_(TotpCredential.last_step.is_(None), TotpCredential.last_step < step))
            .values(last_step=step)
        ).rowcount
        return claimed == 1
    return False
