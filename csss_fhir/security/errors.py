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
