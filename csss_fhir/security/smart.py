"""SMART App Launch: the authorization code grant with PKCE (S256), EHR and standalone launch.

A SMART app is a client registered with redirect URIs and the app scopes it may ask for
(`launch`, `launch/patient`, `user/<Type>.rs`, `patient/<Type>.rs`). The signed-in web
user approves it at /auth/authorize; the app exchanges the one-time code, with its PKCE
verifier, at /auth/token for a token that acts as that user. App tokens only read: this
server grants read scopes (`rs`, v1 `read`) to apps and refuses them every write, and
they read only the types their scopes name, within the user's own rights.

Launch context: an EHR launch names a `launch` value that a signed-in user created for a
patient (POST /auth/launch); a standalone launch asking `launch/patient` gets the patient
of a patient user (staff have no patient picker here, so it is not granted to them).
`patient/` scopes are granted to patient users only, whose compartment is that patient.
Codes and launch values are stored as SHA-256 hashes and used once.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

from sqlalchemy import delete
from sqlalchemy.orm import Session

from csss_fhir.errors import CsssError, InvalidInputError
from csss_fhir.models import ApiClient, AuthorizationCode, LaunchContext, Patient, User, utcnow
from csss_fhir.security import access
from csss_fhir.security.actor import Actor
from csss_fhir.security.errors import AccessDeniedError, InvalidGrantError

CODE_LIFETIME = timedelta(minutes=2)
LAUNCH_LIFETIME = timedelta(minutes=10)
CONTEXT_SCOPES = ("launch", "launch/patient")
_RESOURCE_SCOPE = re.compile(r"^(?P<context>user|patient)/(?P<type>\*|[A-Z][A-Za-z]+)\."
                             r"(?P<permissions>read|\*|c?r?u?d?s?)$")
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class AuthorizeError(CsssError):
    """A refused authorization request, sent back to the app's redirect URI as
    `error` (RFC 6749 §4.1.2.1), once the client and its redirect URI are known good."""

    def __init__(self, error: str, message: str, *, redirect_uri: str, state: str | None
                 ) -> None:
        super().__init__(message)
        self.error = error
        self.redirect_uri = redirect_uri
        self.state = state

    def location(self) -> str:
        """The redirect URI carrying this refusal."""
        return redirect_with(self.redirect_uri, error=self.error,
                             error_description=str(self), state=self.state)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked /auth/authorize request."""

    client: ApiClient
    redirect_uri: str
    state: str | None
    scopes: tuple[str, ...]  # asked and registered; narrowed again for the user
    code_challenge: str
    launch: str | None

    def refusal(self, error: str, message: str) -> AuthorizeError:
        return AuthorizeError(error, message, redirect_uri=self.redirect_uri, state=self.state)


@dataclass(frozen=True)
class AppGrant:
    """What the code exchange gives: the user, the scopes and the launch context."""

    user: User
    client: ApiClient
    scope: str
    patient_id: str | None


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def read_scope(scope: str) -> tuple[str, str] | None:
    """(context, resource type) of an app scope that grants reading, else None.

    `user/Patient.cruds` reads as a read scope: this server grants apps reading only.
    """
    match = _RESOURCE_SCOPE.match(scope)
    if match is None:
        return None
    permissions = match["permissions"]
    if permissions in ("read", "*") or ("r" in permissions and "s" in permissions):
        return match["context"], match["type"]
    return None


def check_app_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """Registration: the app scopes a client may be given.

    Raises:
        InvalidInputError: a scope that is neither a launch scope nor a read scope.
    """
    unknown = [s for s in scopes if s not in CONTEXT_SCOPES and read_scope(s) is None]
    if unknown:
        raise InvalidInputError(f"unknown app scope(s) {', '.join(unknown)}; apps may have "
                                "launch, launch/patient, user/<Type>.rs, patient/<Type>.rs "
                                "(and * for every type)")
    return scopes


def check_redirect_uris(uris: tuple[str, ...]) -> tuple[str, ...]:
    """Registration: absolute https URIs (http only on loopback), without fragments."""
    for uri in uris:
        parts = urlsplit(uri)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.fragment or not parts.netloc or not (
                parts.scheme == "https" or parts.scheme == "http" and loopback):
            raise InvalidInputError(f"redirect URI {uri!r} must be an absolute https URI "
                                    "(http only for localhost) without a #fragment")
    return uris


def parse_request(session: Session, params: dict, *, fhir_base: str) -> AuthorizationRequest:
    """Check an authorization request.

    Raises:
        InvalidInputError: unknown client or a redirect URI it did not register (shown
            to the user, never redirected: RFC 6749 §4.1.2.1);
        AuthorizeError: anything else wrong, to be sent back to the redirect URI.
    """
    client_id, redirect_uri = params.get("client_id"), params.get("redirect_uri")
    client = session.get(ApiClient, client_id) if isinstance(client_id, str) else None
    if client is None or not client.active or not client.redirect_uris:
        raise InvalidInputError("client_id does not name a registered SMART app; register "
                                "it with csss clients create --redirect-uri")
    registered = client.redirect_uris.split()
    if redirect_uri is None and len(registered) == 1:
        redirect_uri = registered[0]
    if redirect_uri not in registered:
        raise InvalidInputError("redirect_uri is not one this app registered; it must match "
                                "exactly")
    state = params.get("state")

    def refuse(error: str, message: str) -> AuthorizeError:
        return AuthorizeError(error, message, redirect_uri=redirect_uri, state=state)

    if params.get("response_type") != "code":
        raise refuse("unsupported_response_type", "response_type must be code")
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        raise refuse("invalid_request", "PKCE is required: send code_challenge with "
                                        "code_challenge_method=S256")
    if params.get("aud") is not None and params["aud"].rstrip("/") != fhir_base.rstrip("/"):
        raise refuse("invalid_request", f"aud must be this FHIR server, {fhir_base}")
    asked = tuple(dict.fromkeys(str(params.get("scope") or "").split()))
    allowed = set(client.scopes.split())
    scopes = tuple(s for s in asked if s in allowed or (
        read_scope(s) is not None and _covered_by(s, allowed)))
    if not scopes:
        raise refuse("invalid_scope", "none of the requested scopes is registered for this "
                                      f"app ({client.scopes})")
    return AuthorizationRequest(client=client, redirect_uri=redirect_uri, state=state,
                                scopes=scopes,
                                code_challenge=str(params["code_challenge"])[:128],
                                launch=params.get("launch") or None)


def _covered_by(scope: str, allowed: set[str]) -> bool:
    context, resource_type = read_scope(scope)  # type: ignore[misc]
    held = {read_scope(s) for s in allowed}
    return (context, resource_type) in held or (
        resource_type != access.AUDIT and (context, "*") in held)


def _granted(actor: Actor, request: AuthorizationRequest, patient_id: str | None
             ) -> tuple[str, ...]:
    """The requested scopes this user may give the app (see the module docstring)."""
    granted = []
    for scope in request.scopes:
        if scope == "launch":
            if request.launch and patient_id:
                granted.append(scope)
        elif scope == "launch/patient":
            if patient_id:
                granted.append(scope)
        elif read_scope(scope) is not None:
            context, resource_type = read_scope(scope)  # type: ignore[misc]
            if context == "patient" and not actor.is_patient:
                continue
            if resource_type != "*":
                try:
                    access.require_read(actor, resource_type)
                except AccessDeniedError:
                    continue
            granted.append(f"{context}/{resource_type}.rs")
    return tuple(dict.fromkeys(granted))


def launch_patient(session: Session, actor: Actor, request: AuthorizationRequest
                   ) -> str | None:
    """The patient in context: the EHR launch's, or a patient user's own for
    `launch/patient`.

    Raises:
        AuthorizeError: the launch value is unknown, expired or another user's.
    """
    if request.launch:
        context = session.get(LaunchContext, _digest(request.launch))
        if context is None or context.user_id != actor.user_id or \
                context.expires_at < utcnow():
            raise request.refusal("invalid_request", "the launch value is unknown, expired "
                                                     "or was made for another user")
        return context.patient_id
    if "launch/patient" in request.scopes and actor.is_patient:
        return actor.patient_id
    return None


def context_patient(session: Session, actor: Actor, request: AuthorizationRequest
                    ) -> Patient | None:
    """The patient the app would open, for the approval page to name (a wrong-patient
    launch is caught by the user before the app sees anything).

    Raises:
        AuthorizeError: a bad launch value.
    """
    patient_id = launch_patient(session, actor, request)
    return session.get(Patient, patient_id) if patient_id else None


def approve(session: Session, actor: Actor, request: AuthorizationRequest) -> str:
    """The signed-in user approves the app: the redirect URI carrying a fresh code. Commits.

    Raises:
        AuthorizeError: a bad launch value, or nothing this user may grant.
    """
    patient_id = launch_patient(session, actor, request)
    scopes = _granted(actor, request, patient_id)
    if not any(read_scope(s) for s in scopes):
        raise request.refusal("invalid_scope", "none of the requested scopes can be "
                                               f"granted to a {actor.role}")
    code = secrets.token_urlsafe(32)
    session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < utcnow()))
    session.add(AuthorizationCode(
        code_hash=_digest(code), client_id=request.client.id, user_id=actor.user_id,
        redirect_uri=request.redirect_uri, scope=" ".join(scopes),
        code_challenge=request.code_challenge, patient_id=patient_id,
        expires_at=utcnow() + CODE_LIFETIME))
    session.commit()
    return redirect_with(request.redirect_uri, code=code, state=request.state)


def denial(request: AuthorizationRequest) -> str:
    """The redirect URI telling the app the user said no."""
    return request.refusal("access_denied", "the user did not approve the app").location()


def origin_of(uri: str) -> str:
    """scheme://host[:port] of a redirect URI."""
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def redirect_with(uri: str, **values: str | None) -> str:
    query = urlencode({k: v for k, v in values.items() if v is not None})
    return f"{uri}{'&' if urlsplit(uri).query else '?'}{query}"


def exchange(session: Session, client: ApiClient, *, code: object, redirect_uri: object,
             verifier: object) -> AppGrant:
    """Redeem an authorization code (once) for the client that authenticated.

    Raises:
        InvalidGrantError: unknown, used or expired code, another client's, another
            redirect URI, a PKCE verifier that does not match, or a user since disabled.
    """
    row = session.get(AuthorizationCode, _digest(code)) if isinstance(code, str) else None
    if row is None:
        raise InvalidGrantError("the authorization code is unknown, used or expired")
    session.delete(row)  # one use, whatever happens next
    session.commit()
    if row.client_id != client.id or row.expires_at < utcnow():
        raise InvalidGrantError("the authorization code is unknown, used or expired")
    if redirect_uri != row.redirect_uri:
        raise InvalidGrantError("redirect_uri differs from the one the code was issued for")
    if not isinstance(verifier, str) or not _VERIFIER.match(verifier):
        raise InvalidGrantError("code_verifier must be 43-128 characters of A-Z a-z 0-9 "
                                "- . _ ~ (RFC 7636)")
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    if not secrets.compare_digest(computed.rstrip(b"=").decode(), row.code_challenge):
        raise InvalidGrantError("code_verifier does not match the code_challenge (S256)")
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        raise InvalidGrantError("the user who approved the app can no longer sign in")
    return AppGrant(user=user, client=client, scope=row.scope, patient_id=row.patient_id)


def create_launch(session: Session, actor: Actor, patient_id: object) -> str:
    """An EHR launch value for this user and patient (10 minutes). Commits.

    Raises:
        AccessDeniedError: a patient or system caller; InvalidInputError: unknown patient.
    """
    if actor.user_id is None or actor.is_patient:
        raise AccessDeniedError(f"the {actor.role} role may not launch apps for a patient")
    access.require_read(actor, "Patient")
    patient = session.get(Patient, patient_id) if isinstance(patient_id, str) else None
    if patient is None:
        raise InvalidInputError("patient must be the id of a Patient on this server")
    launch = secrets.token_urlsafe(32)
    session.execute(delete(LaunchContext).where(LaunchContext.expires_at < utcnow()))
    session.add(LaunchContext(launch_hash=_digest(launch), user_id=actor.user_id,
                              patient_id=patient.id, expires_at=utcnow() + LAUNCH_LIFETIME))
    session.commit()
    return launch


def read_types(scope: str) -> frozenset[str]:
    """The resource types (or `*`) an app token's scope claim lets it read."""
    return frozenset(parsed[1] for s in scope.split() if (parsed := read_scope(s)))
