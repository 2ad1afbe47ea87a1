"""web: the per-role UI, server-rendered from templates/ (Jinja2), no front-end build step.

Thin in the same way as api/: each view parses a form, calls the same workflow, security and
patient services as /fhir, and renders a page. Rules live in those services; the one rule
written here is which role's dashboard a page belongs to (dashboards.py), a matter of
navigation. Refusals become pages in errors.py, the UI's one error handler.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask

from csss_fhir.reports.times import format_time


def init_app(app: Flask) -> None:
    from csss_fhir import wording
    from csss_fhir.web import admin, auth, doctor, errors, patient, pharmacist, session

    for blueprint in (auth.bp, patient.bp, doctor.bp, pharmacist.bp, admin.bp):
        app.register_blueprint(blueprint)
    session.init_app(app)
    errors.init_app(app)
    app.jinja_env.filters["readable"] = wording.readable  # no codes on any page
    app.jinja_env.filters["hospital_time"] = hospital_time


def hospital_time(value: datetime) -> str:
    """A stored (UTC) time as the hospital reads it: in HOSPITAL_TIMEZONE, zone named."""
    from csss_fhir.extensions import services

    return format_time(value, services().settings.hospital_timezone)
