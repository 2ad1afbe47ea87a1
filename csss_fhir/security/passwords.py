"""Password hashing with bcrypt, with the same cost whether or not an account exists."""

from __future__ import annotations

from functools import cache

import bcrypt

from csss_fhir.errors import InvalidInputError

MIN_LENGTH = 10
# Checked besides the 30,000 most common passwords that zxcvbn ships (NIST SP 800-63B 5.1.1.2).
COMMON = frozenset({
    "password123", "1234567890", "qwertyuiop", "password1234", "iloveyou12", "letmein123",
    "administrator", "welcome123", "changeme123", "0123456789",
})
_BCRYPT_MAX_BYTES = 72


def check_policy(password: str) -> None:
    """Raise InvalidInputError if the password is too weak to store."""
    if len(password) < MIN_LENGTH:
        raise InvalidInputError(f"the password must have at least {MIN_LENGTH} characters",
                                field="password")
    if len(password.encode()) > _BCRYPT_MAX_BYTES:
        raise InvalidInputError(f"the password must be at most {_BCRYPT_MAX_BYTES} bytes",
                                field="password")
    lowered = password.lower()
    if lowered in COMMON or lowered in _common_passwords() or len(set(lowered)) < 4:
        raise InvalidInputError("this password is too common; choose another",
                                field="password")


def hash_password(password: str, *, rounds: int = 12) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def verify_password(password: str, password_hash: str | None, *, rounds: int = 12) -> bool:
    """Check a password; with no hash (unknown user) spend the same time and say no."""
    candidate = password.encode()[:_BCRYPT_MAX_BYTES]
    if password_hash is None:
        bcrypt.checkpw(candidate, _dummy_hash(rounds))
        return False
    return bcrypt.checkpw(candidate, password_hash.encode("ascii"))


@cache
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= MIN_LENGTH)


_DUMMY: dict[int, bytes] = {}


def _dummy_hash(rounds: int) -> bytes:
    if rounds not in _DUMMY:
        _DUMMY[rounds] = bcrypt.hashpw(b"no such account", bcrypt.gensalt(rounds=rounds))
    return _DUMMY[rounds]
