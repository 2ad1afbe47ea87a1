"""E-mailed one-time codes: 6 digits from `secrets`, stored as an HMAC, single use."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from csss_fhir.models import OtpCode, User, utcnow
from csss_fhir.security import totp

CODE_DIGITS = 6


def _digest(secret_key: str, user_id: str, code: str) -> str:
    message = f"{user_id}:{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def issue_code(session: Session, user: User, *, secret_key: str, lifetime: timedelta,
               now: datetime | None = None) -> str:
    """Create a new code for `user`, invalidating any earlier unused one; return the code.

    The caller sends it and commits; only the HMAC is stored.
    """
    now = now or utcnow()
    session.execute(
        update(OtpCode)
        .where(OtpCode.user_id == user.id, OtpCode.used_at.is_(None))
        .values(used_at=now)
    )
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    session.add(OtpCode(user_id=user.id, code_hash=_digest(secret_key, user.id, code),
                        created_at=now, expires_at=now + lifetime))
    return code


def consume_code(session: Session, user: User, code: str, *, secret_key: str,
                 now: datetime | None = None) -> bool:
    """Accept `code` once if it is the user's current, unexpired code; mark it used."""
    now = now or utcnow()
    # isascii: str.isdigit() also accepts full-width and other Unicode digits.
    if not (isinstance(code, str) and len(code) == CODE_DIGITS and code.isascii()
            and code.isdigit()):
        return False
    expected = _digest(secret_key, user.id, code)
    candidates = session.scalars(
        select(OtpCode).where(OtpCode.user_id == user.id, OtpCode.used_at.is_(None),
                              OtpCode.expires_at > now)
    ).all()
    for candidate in candidates:
        if hmac.compare_digest(candidate.code_hash, expected):
            # Conditional update: of two requests racing with one code, only one succeeds.
            claimed = session.execute(
                update(OtpCode).where(OtpCode.id == candidate.id, OtpCode.used_at.is_(None))
                .values(used_at=now)
            ).rowcount
            return claimed == 1
    return False


def verify_second_factor(session: Session, user: User, code: object, *, secret_key: str,
                         now: datetime | None = None) -> bool:
    """Accept either kind of code: the user's TOTP authenticator, or an e-mailed code."""
    if not isinstance(code, str):
        return False
    code = code.strip()
    if totp.verify(session, user, code, secret_key=secret_key, now=now):
        return True
    return consume_code(session, user, code, secret_key=secret_key, now=now)
