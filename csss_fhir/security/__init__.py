"""security: who the caller is (passwords, tokens, OTP, system clients and their scopes),
what they may read, rate limits and lockout, hardening headers, and the audit trail.

Workflow steps are not decided here: `workflow/` owns who may take which step in which state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from csss_fhir.settings import Settings


def init_app(app: Flask, settings: Settings) -> None:
    """Rate limits, headers and the audit hook; call after the blueprints are registered."""
    from csss_fhir.security import audit, headers, ratelimit, redaction

    redaction.install()
    ratelimit.init_app(app, settings)
    headers.init_app(app, settings)
    audit.init_app(app)
