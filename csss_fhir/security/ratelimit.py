"""Rate limits on /auth (Flask-Limiter): per client address and per account.

These slow down guessing from one place and against one account; the account lockout
(`lockout.py`, in the database) is what stops a slow, distributed guesser. The storage is
RATELIMIT_STORAGE_URI: `memory://` counts per worker process, so with several gunicorn
workers or app nodes point it at redis:// (or memcached://) to share one count.

When that shared storage cannot be reached, each worker counts in memory until it is back
(Flask-Limiter's in-memory fallback): sign-in keeps working, limited per worker, and the
lockout in the database still holds. Without the fallback every sign-in would be a 500.
"""

from __future__ import annotations

import hashlib
import json
import math
import time

from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address

from csss_fhir.settings import Settings

SIGN_IN_PAGES = frozenset({"web_auth.login"})  # UI forms that take a password
# Signed-in forms that check a password or a code: the per-address budget (no username
# in the form to count per account; the lockout counts those per account and address).
CHECKING_PAGES = frozenset({"web_auth.change_password", "web_auth.enrol_authenticator",
                            "web_auth.authenticator_code", "web_admin.confirm_second_factor",
                            "web_admin.send_users_code"})

limiter = Limiter(key_func=get_remote_address, default_limits=[], headers_enabled=False,
                  key_prefix="csss")


def account_of_request() -> str:
    """The account a sign-in request names (username or client id), as an opaque key."""
    body = None
    if request.is_json:
        try:
            body = json.loads(request.get_data(cache=True))
        except (ValueError, RecursionError):  # the view answers 400 for it
            body = None
    values = body if isinstance(body, dict) else request.form
    name = values.get("username") or values.get("client_id") or values.get("email")
    if not name and request.authorization is not None:
        name = request.authorization.username
    normalised = name.strip().lower() if isinstance(name, str) else ""
    return "account:" + hashlib.sha256(normalised.encode()).hexdigest()


def init_app(app: Flask, settings: Settings) -> None:
    app.config.setdefault("RATELIMIT_STORAGE_URI", settings.ratelimit_storage_uri)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    if settings.ratelimit_storage_uri.startswith(("redis://", "rediss://")):
        # A hung Redis must not hold sign-ins: give up within a second, then fall back.
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS",
                              {"socket_connect_timeout": 1, "socket_timeout": 1})
    limiter.init_app(app)

    @app.before_request
    def limit_sign_in_pages() -> None:
        """The UI's sign-in form draws on the same budgets as /auth."""
        if request.method == "POST" and request.endpoint in SIGN_IN_PAGES:
            with per_address:
                pass
            with per_account:
                pass
        elif request.method == "POST" and request.endpoint in CHECKING_PAGES:
            with per_address:
                pass

    @app.errorhandler(RateLimitExceeded)
    def too_many_requests(error: RateLimitExceeded) -> Response:
        from csss_fhir.api.outcomes import outcome_response

        message = "too many requests; slow down and retry later"
        if request.path.startswith(("/auth", "/fhir")):
            response = outcome_response(429, "throttled", message)
        else:
            response = Response(message.capitalize() + ".", status=429,
                                content_type="text/plain; charset=utf-8")
        current = limiter.current_limit
        wait = current.reset_at - time.time() if current is not None else 60
        response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return response


def _address_limit() -> str:
    from csss_fhir.extensions import services

    return services().settings.auth_rate_limit_address


def _account_limit() -> str:
    from csss_fhir.extensions import services

    return services().settings.auth_rate_limit_account


# Shared by every /auth route: asking for codes and asking for tokens draw on one budget.
per_address = limiter.shared_limit(_address_limit, scope="auth-address", methods=["POST"])
per_account = limiter.shared_limit(_account_limit, scope="auth-account",
                                   key_func=account_of_request, methods=["POST"])
