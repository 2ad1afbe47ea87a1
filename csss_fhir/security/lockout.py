"""Throttling of password and one-time-code guesses (NIST SP 800-63B §5.2.2, OWASP ASVS
V6.3): the SOURCE is locked out, the account only slowed down.

Two counters, in the database so every gunicorn worker sees them:

- the source key (account + client address): after `Policy.failures` failures the next
  one locks this address out of this account, for `Policy.minutes`, doubling per lock up to
  24 h. The same person at another address is not affected.
- the account key: failures from every address together. Past `ACCOUNT_SLOWDOWN_AFTER` the
  account answers with a growing back-off (1 s, 2 s, 4 s ... at most `MAX_SLOWDOWN`), never
  a day-long lock: a distributed guesser gets a few tries an hour, the owner waits minutes.

Keys are HMACs of the normalised username (and address), never the name itself: an unknown
username is counted exactly like a real one, so the answer never tells whether it exists.

Every attempt is counted BEFORE it is evaluated, with one atomic UPDATE ... RETURNING: of 24
parallel wrong codes no more are evaluated than of 24 sequential ones.
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
ACCOUNT_SLOWDOWN_AFTER = 20  # failures from all addresses together before the back-off
MAX_SLOWDOWN = timedelta(minutes=15)


@dataclass(frozen=True)
class Policy:
    failures: int  # failures allowed from one source; the next one locks it
    minutes: int  # first lock; doubled for each lock since the last success


@dataclass(frozen=True)
class Keys:
    source: str  # this account from this client address
    account: str  # this account from anywhere


def _hmac(secret_key: str, text: str) -> str:
    return hmac.new(secret_key.encode(), text.encode(), hashlib.sha256).hexdigest()


def _normalised(username: object) -> str:
    return username.strip().lower() if isinstance(username, str) else ""


def account_key(secret_key: str, username: object) -> str:
    """The throttle key of a username (or client id) from anywhere: never the name itself."""
    return _hmac(secret_key, f"account:{_normalised(username)}")


def keys_for(secret_key: str, username: object, address: str | None) -> Keys:
    """The two throttle keys of one sign-in attempt."""
    return Keys(source=_hmac(secret_key, f"source:{address or '-'}:{_normalised(username)}"),
                account=account_key(secret_key, username))


def check(session: Session, keys: Keys, *, now: datetime | None = None) -> None:
    """Refuse while this source is locked out, or the account is in its back-off.

    Raises:
        TooManyAttemptsError: with the seconds left.
    """
    now = now or utcnow()
    for key in (keys.source, keys.account):
        row = session.get(AuthThrottle, key)
        if row is not None and row.locked_until is not None and row.locked_until > now:
            raise _locked(row.locked_until - now)


def begin_attempt(session: Session, keys: Keys, policy: Policy, *,
                  now: datetime | None = None) -> None:
    """Count this attempt before it is evaluated (atomically: parallel attempts each get
    their own number). Caller commits (or keeps the row locked until it does).

    Raises:
        TooManyAttemptsError: this source already used every attempt it has (a parallel
            request took the last one); nothing is evaluated.
    """
    now = now or utcnow()
    source, source_lock = _increment(session, keys.source, now)
    _, account_lock = _increment(session, keys.account, now)
    # Read in the same statement as the count: a lock set by a parallel request after this
    # one's `check` is seen here, so no attempt slips in after a lock.
    for lock in (source_lock, account_lock):
        if lock is not None and lock > now:
            raise _locked(lock - now)
    if source > policy.failures + 1:
        raise _locked(timedelta(minutes=policy.minutes))


def record_failure(session: Session, keys: Keys, policy: Policy, *,
                   now: datetime | None = None) -> None:
    """After a failed attempt (already counted): lock the source past `policy.failures`,
    and slow the account down past ACCOUNT_SLOWDOWN_AFTER. Caller commits.

    Raises:
        TooManyAttemptsError: this failure locked the source out.
    """
    now = now or utcnow()
    account = session.get(AuthThrottle, keys.account)
    session.refresh(account)
    excess = account.failures - ACCOUNT_SLOWDOWN_AFTER
    if excess > 0:
        account.locked_until = now + min(timedelta(seconds=2 ** min(excess - 1, 20)),
                                         MAX_SLOWDOWN)
    row = session.get(AuthThrottle, keys.source)
    session.refresh(row)
    if row.failures <= policy.failures:
        session.flush()
        return
    duration = min(timedelta(minutes=policy.minutes) * (2 ** min(row.lock_count, 16)),
                   MAX_LOCK)
    row.locked_until = now + duration
    row.lock_count += 1
    row.failures = 0
    session.flush()
    raise _locked(duration)


def not_a_failure(session: Session, keys: Keys) -> None:
    """Give back an attempt that proved the password but is not a sign-in yet (a code was
    asked for, or is still to be entered). Caller commits."""
    for key in (keys.source, keys.account):
        session.execute(update(AuthThrottle)
                        .where(AuthThrottle.key == key, AuthThrottle.failures > 0)
                        .values(failures=AuthThrottle.failures - 1))


def record_success(session: Session, keys: Keys) -> None:
    """Forget the failures (and the back-off) after a complete, successful sign-in."""
    for key in (keys.source, keys.account):
        row = session.get(AuthThrottle, key)
        if row is not None:
            session.delete(row)


def _increment(session: Session, key: str, now: datetime) -> tuple[int, datetime | None]:
    """Add one to the key's count; return the new count and the key's lock, read in the
    same statement."""
    _ensure_row(session, key, now)
    count, locked_until = session.execute(
        update(AuthThrottle).where(AuthThrottle.key == key)
        .values(failures=AuthThrottle.failures + 1, updated_at=now)
        .returning(AuthThrottle.failures, AuthThrottle.locked_until)
        .execution_options(synchronize_session=False)
    ).one()
    return count, locked_until


def _ensure_row(session: Session, key: str, now: datetime) -> None:
    if session.get(AuthThrottle, key) is not None:
        return
    try:
        with session.begin_nested():
            session.add(AuthThrottle(key=key, failures=0, lock_count=0, updated_at=now))
    except IntegrityError:  # another worker created it first
        pass


def _locked(remaining: timedelta) -> TooManyAttemptsError:
    seconds = max(1, math.ceil(remaining.total_seconds()))
    return TooManyAttemptsError(
        "too many failed sign-in attempts from here: try again in "
        f"{math.ceil(seconds / 60)} minute(s), or sign in from your usual device",
        retry_after=seconds)
