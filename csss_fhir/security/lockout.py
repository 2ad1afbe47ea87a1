"""Account lockout with back-off after repeated password or one-time-code failures.

The counters live in the database, so every gunicorn worker (and every app host) sees the
same lock. They are keyed by an HMAC of the normalised username, not by user id: an unknown
username is counted and locked exactly like a real one, so the answer never tells whether an
account exists. While locked, even the right password is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from csss_fhir.models import AuthThrottle, utcnow
from csss_fhir.security.errors import TooManyAttemptsError

MAX_LOCK = timedelta(hours=24)


@dataclass(frozen=True)
class Policy:
    failures: int  # failures allowed; the next one locks
    minutes: int  # first lock; doubled for each lock since the last success


def account_key(secret_key: str, username: object) -> str:
    """The throttle key of a username (or client id): never the name itself."""
    normalised = username.strip().lower() if isinstance(username, str) else ""
    return hmac.new(secret_key.encode(), f"account:{normalised}".encode(),
                    hashlib.sha256).hexdigest()


def check(session: Session, key: str, *, now: datetime | None = None) -> None:
    """Refuse while the account is locked.

    Raises:
        TooManyAttemptsError: with the seconds left until the lock ends.
    """
    now = now or utcnow()
    row = session.get(AuthThrottle, key)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        raise _locked(row.locked_until - now)


def record_failure(session: Session, key: str, policy: Policy, *,
                   now: datetime | None = None) -> None:
    """Count a failure; the one past `policy.failures` locks the account. Caller commits.

    Raises:
        TooManyAttemptsError: this failure locked the account.
    """
    now = now or utcnow()
    row = _row(session, key, now)
    # An atomic increment: failures from several workers at once are all counted.
    session.execute(update(AuthThrottle).where(AuthThrottle.key == key)
                    .values(failures=AuthThrottle.failures + 1, updated_at=now))
    session.refresh(row)
    if row.failures <= policy.failures:
        return
    duration = min(timedelta(minutes=policy.minutes) * (2 ** min(row.lock_count, 16)),
                   MAX_LOCK)
    row.locked_until = now + duration
    row.lock_count += 1
    row.failures = 0
    session.flush()
    raise _locked(duration)


def record_success(session: Session, key: str) -> None:
    """Forget the failures (and the back-off) after a complete, successful sign-in."""
    row = session.get(AuthThrottle, key)
    if row is not None:
        session.delete(row)


def _row(session: Session, key: str, now: datetime) -> AuthThrottle:
    row = session.get(AuthThrottle, key)
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = AuthThrottle(key=key, failures=0, lock_count=0, updated_at=now)
            session.add(row)
    except IntegrityError:  # another worker created it first
        row = session.get(AuthThrottle, key)
    return row


def _locked(remaining: timedelta) -> TooManyAttemptsError:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    return TooManyAttemptsError(
        "too many failed sign-in attempts: this account is locked; try again in "
        f"{math.ceil(seconds / 60)} minute(s)", retry_after=seconds)
