"""api: the FHIR REST blueprint (/fhir), authentication (/auth) and health checks.

Blueprints here parse the request, call one service, and render; they hold no rules.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from csss_fhir.api import (
        auth,
        conformance,
        fhir,
        guards,
        health,
        operations,
        outcomes,
        report_operations,
    )
    from csss_fhir.api import subscriptions as subscription_routes

    app.before_request(guards.refuse_nul_characters)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(auth.well_known)
    app.register_blueprint(operations.bp)  # before fhir.bp: its literal $-paths win
    app.register_blueprint(report_operations.bp)
    app.register_blueprint(conformance.bp)  # before fhir.bp, like operations
    app.register_blueprint(subscription_routes.bp)
    app.register_blueprint(fhir.bp)
    outcomes.init_app(app)
