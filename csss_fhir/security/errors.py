"""Refusals about who the caller is."""

from __future__ import annotations

from csss_fhir.errors import CsssError


class NotAuthenticatedError(CsssError):
    """No valid credentials: missing, wrong, expired or revoked."""


class OtpRequiredError(NotAuthenticatedError):
    """The role needs a second factor and none was given."""

    details = "otp-required"


class OtpInvalidError(NotAuthenticatedError):
    """The one-time code is wrong, used or expired."""

    details = "otp-invalid"


class AccessDeniedError(CsssError):
    """The caller is known but may not do this."""


class TooManyAttemptsError(CsssError):
    """Too many failed sign-ins: the account is locked for `retry_after` seconds."""

    details = "locked"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class InvalidGrantError(NotAuthenticatedError):
    """An OAuth grant that is wrong, expired, used or not this client's (RFC 6749 §5.2
    `invalid_grant`): the client is known, the credential it presents is not good."""


class InvalidScopeError(CsssError):
    """None of the scopes a token request asks for can be granted (`invalid_scope`)."""


class UnsupportedGrantTypeError(CsssError):
    """A token request with a grant_type this server does not issue tokens for."""
