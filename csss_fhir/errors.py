"""Domain exceptions shared by every layer. Messages are safe to show a client.

Each exception names what happened; `api/outcomes.py` is the one table that turns them into
HTTP status codes and OperationOutcomes, and `web/` has the one handler for the UI.
"""

from __future__ import annotations


class ConfigurationError(Exception):
    """The service cannot start with these settings (the message names the variable)."""


class CsssError(Exception):
    """Base of every refusal a client can cause. `details` is a machine-readable reason;
    `field` names the input (parameter or form field) at fault, when there is one."""

    details: str | None = None
    field: str | None = None

    def __init__(self, message: str, *, details: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(message)
        if details is not None:
            self.details = details
        if field is not None:
            self.field = field


class InvalidInputError(CsssError):
    """The request is malformed (missing parameter, wrong type, unparsable body)."""


class ResourceNotFoundError(CsssError):
    """No such resource, or none the caller may know about."""


class ResourceValidationError(CsssError):
    """A FHIR resource in the request fails validation; `expression` names the element
    (FHIRPath, e.g. `Patient.telecom[0].system`) when one is at fault: it is the error's
    `field`, which the OperationOutcome carries as `issue.expression`."""

    def __init__(self, message: str, *, details: str | None = None,
                 expression: str | None = None) -> None:
        super().__init__(message, details=details, field=expression)

    @property
    def expression(self) -> str | None:
        return self.field


class UnsupportedMediaError(CsssError):
    """The body's real format is not one we accept."""


class PayloadTooLargeError(CsssError):
    """The body is larger than the configured limit."""


class ConflictError(CsssError):
    """The request conflicts with the current state of the data."""


class PreconditionFailedError(CsssError):
    """`If-Match` names a version that is not the current one."""


class NotAcceptableError(CsssError):
    """The client accepts no representation we produce."""


class UnprocessableContentError(CsssError):
    """The body is of a kind we accept, but its content cannot be used (a DICOM object
    without pixel data, an image without the UIDs it must carry)."""
