"""Response headers that harden every answer, and CORS for the configured origins only."""

from __future__ import annotations

from flask import Flask, Response, request

from csss_fhir.settings import Settings

# The UI serves its own scripts and styles; nothing inline, nothing from elsewhere. QR codes
# for TOTP enrolment are data: images.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


def policy_with_form_target(origin: str) -> str:
    """The policy for a page whose form may end at another site: the SMART approval page,
    whose POST redirects to the app (browsers apply form-action to that redirect too)."""
    return CONTENT_SECURITY_POLICY.replace("form-action 'self'", f"form-action 'self' {origin}")


def _is_page(blueprint: str | None) -> bool:
    """A page of the web UI (web/: every one of them is behind a sign-in)."""
    return bool(blueprint and blueprint.startswith("web_"))


def init_app(app: Flask, settings: Settings) -> None:
    origins = frozenset(settings.cors_origins)
    https_base = bool(settings.base_url and settings.base_url.startswith("https://"))

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if request.is_secure or https_base:
            headers.setdefault("Strict-Transport-Security", HSTS)
        if request.path.startswith(("/auth", "/fhir")) or _is_page(request.blueprint):
            # Tokens, and pages and resources with patient data: no browser or proxy cache
            # keeps a copy (a shared ward computer's back button shows nothing).
            headers.setdefault("Cache-Control", "no-store")
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers.add("Vary", "Origin")
            headers["Access-Control-Allow-Headers"] = \
                "Authorization, Content-Type, If-Match, Prefer"
            headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            headers["Access-Control-Expose-Headers"] = "ETag, Location, Last-Modified"
        return response
