"""Password policy: a minimum length and no common passwords (NIST SP 800-63B 5.1.1.2)."""

from __future__ import annotations

import pytest

from csss_fhir.errors import InvalidInputError
from csss_fhir.security import passwords


@pytest.mark.parametrize("password", ["short", "1234567890", "qwertyuiop", "iloveyou12",
                                      "Password123", "aaaaaaaaaaaa", "ababababab"])
def test_weak_passwords_are_refused(password):
    with pytest.raises(InvalidInputError):
        passwords.check_policy(password)


@pytest.mark.parametrize("password", ["correct-horse-battery", "Tr0ub4dor&3-extended"])
def test_good_passwords_pass(password):
    passwords.check_policy(password)


def test_hash_is_bcrypt_and_verifies():
    stored = passwords.hash_password("correct-horse-battery", rounds=4)
    assert stored.startswith("$2")
    assert passwords.verify_password("correct-horse-battery", stored, rounds=4)
    assert not passwords.verify_password("wrong-horse-battery", stored, rounds=4)
    assert not passwords.verify_password("correct-horse-battery", None, rounds=4)
