"""SMART App Launch: the authorization code grant with PKCE (S256), EHR and standalone launch.

A SMART app is a client registered with redirect URIs and the app scopes it may ask for
(`launch`, `launch/patient`, `user/<Type>.cruds`, `patient/<Type>.rs`; v1 `read`, `write`
and `*` mean `rs`, `cud` and `cruds`). The signed-in web user approves it at
/auth/authorize; the app exchanges the one-time code, with its PKCE verifier, at
/auth/token for a token that acts as that user.

An app gets exactly what both its scopes and the user's role allow, never more than the
role: reading (`r` with `s`) the types the role reads, and creating or updating (`c`, `u`)
what the role's workflow steps write (`workflow.states.WRITES`: $verify creates an
Observation, so it needs `user/Observation.c`). The granted scopes are narrowed to that at
approval, and each write is checked again against them (`scopes.require_app_permission`).

Launch context: an EHR launch names a `launch` value that a signed-in user created for a
patient (POST /auth/launch); a standalone launch asking `launch/patient` gets the patient
of a patient user, or the patient a staff user picks before approving (`patient`, which
the authorize page's picker adds; checked again here: only a patient the user may see).
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
                             r"(?P<permissions>read|write|\*|c?r?u?d?s?)$")
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
PERMISSION_ORDER = "cruds"
WRITE_PERMISSIONS = "cud"
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
    patient: str | None = None  # picked by a staff user for a standalone launch/patient

    @property
    def needs_patient(self) -> bool:
        """A standalone launch asking for a patient context that has none yet."""
        return "launch/patient" in self.scopes and not self.launch and not self.patient

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


@dataclass(frozen=True)
class AppScope:
    """One `user/` or `patient/` scope: context, resource type (or `*`) and permissions."""

    context: str
    resource_type: str
    permissions: frozenset[str]  # of "cruds"

    def text(self) -> str:
        """The scope in SMART v2 syntax, permissions in `cruds` order."""
        letters = "".join(c for c in PERMISSION_ORDER if c in self.permissions)
        return f"{self.context}/{self.resource_type}.{letters}"

    @property
    def reads(self) -> bool:
        return {"r", "s"} <= self.permissions


def app_scope(scope: str) -> AppScope | None:
    """An app scope, parsed; None for anything else (launch scopes, openid, system/...)."""
    match = _RESOURCE_SCOPE.match(scope)
    if match is None or not match["permissions"]:
        return None
    letters = V1_PERMISSIONS.get(match["permissions"], match["permissions"])
    return AppScope(match["context"], match["type"], frozenset(letters))


def read_scope(scope: str) -> tuple[str, str] | None:
    """(context, resource type) of an app scope that grants reading (`r` and `s`)."""
    parsed = app_scope(scope)
    return (parsed.context, parsed.resource_type) if parsed and parsed.reads else None


def check_app_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    """Registration: the app scopes a client may be given.

    Raises:
        InvalidInputError: a scope that is neither a launch scope nor an app scope.
    """
    unknown = [s for s in scopes if s not in CONTEXT_SCOPES and app_scope(s) is None]
    if unknown:
        raise InvalidInputError(f"unknown app scope(s) {', '.join(unknown)}; apps may have "
                                "launch, launch/patient, user/<Type>.cruds, "
                                "patient/<Type>.cruds (any of c r u d s; * for every type)")
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
    registered = [parsed for s in client.scopes.split() if (parsed := app_scope(s))]
    scopes = tuple(kept for s in asked
                   if (kept := _registered_part(s, client.scopes.split(), registered)))
    if not scopes:
        raise refuse("invalid_scope", "none of the requested scopes is registered for this "
                                      f"app ({client.scopes})")
    return AuthorizationRequest(client=client, redirect_uri=redirect_uri, state=state,
                                scopes=scopes,
                                code_challenge=str(params["code_challenge"])[:128],
                                launch=params.get("launch") or None,
                                patient=params.get("patient") or None)


def _registered_part(scope: str, registered_text: list[str], registered: list[AppScope]
                     ) -> str | None:
    """The part of a requested scope the app registered: a launch scope as is, an app scope
    narrowed to the permissions a registered scope of its context and type (or `*`) holds."""
    if scope in CONTEXT_SCOPES:
        return scope if scope in registered_text else None
    asked = app_scope(scope)
    if asked is None:
        return None
    held = frozenset(p for r in registered if r.context == asked.context and (
        r.resource_type == asked.resource_type or r.resource_type == "*" and
        asked.resource_type != access.AUDIT) for p in r.permissions)
    permissions = asked.permissions & held
    return AppScope(asked.context, asked.resource_type, permissions).text() \
        if permissions else None


def _granted(actor: Actor, request: AuthorizationRequest, patient_id: str | None
             ) -> tuple[str, ...]:
    """The requested scopes narrowed to what this user's role allows (see the module
    docstring): reading the types the role reads, writing what its steps write."""
    from csss_fhir.workflow.states import writes_of  # the workflow's table, read lazily

    role_writes = writes_of(actor.role) | {
        (kind, "c") for kind, roles in access.CREATE_ROLES.items() if actor.role in roles}
    granted = []
    for scope in request.scopes:
        if scope == "launch":
            if request.launch and patient_id:
                granted.append(scope)
        elif scope == "launch/patient":
            if patient_id:
                granted.append(scope)
        elif (parsed := app_scope(scope)) is not None:
            if parsed.context == "patient" and not actor.is_patient:
                continue
            permissions = {p for p in parsed.permissions & set(WRITE_PERMISSIONS)
                           if any(p == allowed and parsed.resource_type in ("*", kind)
                                  for kind, allowed in role_writes)}
            if parsed.reads and _may_read(actor, parsed.resource_type):
                permissions |= {"r", "s"}
            if permissions:
                granted.append(AppScope(parsed.context, parsed.resource_type,
                                        frozenset(permissions)).text())
    return tuple(dict.fromkeys(granted))


def _may_read(actor: Actor, resource_type: str) -> bool:
    if resource_type == "*":
        return True
    try:
        access.require_read(actor, resource_type)
    except AccessDeniedError:
        return False
    return True


def launch_patient(session: Session, actor: Actor, request: AuthorizationRequest
                   ) -> str | None:
    """The patient in context: the EHR launch's, or for a standalone `launch/patient` a
    patient user's own or the one a staff user picked.

    Raises:
        AuthorizeError: the launch value is unknown, expired or another user's; the picked
            patient is unknown or one this user may not see.
    """
    if request.launch:
        context = session.get(LaunchContext, _digest(request.launch))
        if context is None or context.user_id != actor.user_id or \
                context.expires_at < utcnow():
            raise request.refusal("invalid_request", "the launch value is unknown, expired "
                                                     "or was made for another user")
        return context.patient_id
    if "launch/patient" not in request.scopes:
        return None
    if actor.is_patient:
        return actor.patient_id
    if request.patient is None:
        return None
    compartment = access.compartment(actor)
    if not _may_read(actor, "Patient") or session.get(Patient, request.patient) is None or \
            compartment not in (None, request.patient):
        raise request.refusal("invalid_request", "the chosen patient is unknown or not one "
                                                 "you may see; pick a patient again")
    return request.patient


def offered(session: Session, actor: Actor, request: AuthorizationRequest
            ) -> tuple[str, ...]:
    """The scopes approving would grant this user's app, for the approval page to list.

    Raises:
        AuthorizeError: a bad launch value or picked patient.
    """
    return _granted(actor, request, launch_patient(session, actor, request))


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
    if not any(app_scope(s) for s in scopes):
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


def write_permissions(scope: str) -> frozenset[str]:
    """What an app token's scope claim lets it write: `Type.c`, `*.u`, ... (scopes.py)."""
    return frozenset(f"{parsed.resource_type}.{p}" for s in scope.split()
                     if (parsed := app_scope(s)) for p in parsed.permissions
                     if p in WRITE_PERMISSIONS)
