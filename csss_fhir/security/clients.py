"""Hospital system clients: registration, the client_credentials grant, SMART scopes.

A client's secret is 256 random bits, shown once and stored as its SHA-256 (a secret that
random needs no slow hash). A client is registered with SMART v1 system scopes
(`system/<Type>.read|write`, `*` for every type); a token request may ask in v1 or v2
(`scopes.py`). AuditEvent is never covered by `*`: it needs its own scope.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from csss_fhir.errors import ConflictError, InvalidInputError
from csss_fhir.models import ApiClient
from csss_fhir.security import client_assertions, smart
from csss_fhir.security import scopes as smart_scopes
from csss_fhir.security.access import AUDIT, STAFF_READABLE_TYPES
from csss_fhir.security.errors import InvalidScopeError, NotAuthenticatedError

READABLE_TYPES = (*STAFF_READABLE_TYPES, AUDIT)
WRITABLE_TYPES = ("Patient", "ImagingStudy", "Subscription")
SUPPORTED_SCOPES: tuple[str, ...] = (
    "system/*.read", "system/*.write",
    *(f"system/{t}.read" for t in READABLE_TYPES),
    *(f"system/{t}.write" for t in WRITABLE_TYPES),
)
WRONG_CLIENT = "the client id or secret is wrong"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str | None  # shown once, never stored; None for a JWKS client
    scopes: tuple[str, ...]


def parse_scopes(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Split and check a scope list ("a b", "a,b" or a list).

    Raises:
        InvalidInputError: a scope this server does not know.
    """
    scopes = smart_scopes.split(value)
    unknown = [s for s in scopes if s not in SUPPORTED_SCOPES]
    if unknown:
        raise InvalidInputError(f"unknown scope(s) {', '.join(unknown)}; supported: "
                                f"{' '.join(SUPPORTED_SCOPES)}")
    if not scopes:
        raise InvalidInputError("at least one scope is required")
    return scopes


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_client(session: Session, name: str, scopes: str | list[str] | tuple[str, ...],
                  *, jwks: str | bytes | dict | None = None,
                  redirect_uris: tuple[str, ...] = (), public: bool = False) -> NewClient:
    """Register a client and return its id and one-time-visible secret. Commits.

    With `jwks` (its public keys) the client authenticates with signed JWTs
    (`private_key_jwt`, client_assertions.py) and gets no secret. With `redirect_uris` it
    is a SMART app (smart.py) holding app scopes; a `public` app (in a browser or on a
    phone, where no secret stays secret) gets no secret and relies on PKCE alone.

    Raises:
        InvalidInputError: bad name, scope, JWKS or redirect URI; ConflictError: the name
            is taken.
    """
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInputError("a client name is 1-100 letters, digits, spaces, '.', '_' "
                                "or '-'")
    if redirect_uris:
        checked = smart.check_app_scopes(smart_scopes.split(scopes))
        smart.check_redirect_uris(redirect_uris)
    elif public:
        raise InvalidInputError("only a SMART app (with --redirect-uri) can be public")
    else:
        checked = parse_scopes(scopes)
    keys = client_assertions.parse_jwks(jwks) if jwks is not None else None
    if session.scalar(select(ApiClient.id).where(ApiClient.name == name)):
        raise ConflictError(f"a client named {name!r} already exists")
    secret = secrets.token_urlsafe(32) if keys is None and not public else None
    client = ApiClient(name=name, secret_hash=_digest(secret) if secret else None, jwks=keys,
                       scopes=" ".join(checked),
                       redirect_uris=" ".join(redirect_uris) or None)
    session.add(client)
    session.commit()
    return NewClient(client_id=client.id, client_secret=secret, scopes=checked)


def authenticate(session: Session, client_id: object, client_secret: object) -> ApiClient:
    """The active client with these credentials.

    Raises:
        NotAuthenticatedError: unknown id, wrong secret, a client without a secret (it
            signs JWTs) or a disabled client (one answer).
    """
    client = session.get(ApiClient, client_id) if isinstance(client_id, str) else None
    given = _digest(client_secret) if isinstance(client_secret, str) else ""
    expected = (client.secret_hash if client is not None else None) or _digest("no secret")
    if (not hmac.compare_digest(given, expected) or client is None or not client.active
            or client.secret_hash is None):
        raise NotAuthenticatedError(WRONG_CLIENT)
    return client


def authenticate_assertion(session: Session, client_id: object, assertion_type: object,
                           assertion: object, *, token_url: str) -> ApiClient:
    """The client a `private_key_jwt` assertion authenticates (client_assertions.py).

    Raises:
        InvalidInputError: the assertion type is not jwt-bearer, or `client_id` is not the
            assertion's issuer; NotAuthenticatedError: the assertion is refused.
    """
    if assertion_type != client_assertions.ASSERTION_TYPE:
        raise InvalidInputError(f"client_assertion_type must be "
                                f"{client_assertions.ASSERTION_TYPE}")
    issuer = client_assertions.claimed_client_id(assertion)
    if client_id not in (None, "", issuer):
        raise InvalidInputError("client_id differs from the client assertion's iss; send "
                                "the same client id in both, or leave client_id out")
    client = session.get(ApiClient, issuer) if issuer else None
    return client_assertions.verify(session, client, assertion, token_url=token_url)


def covered(scope: str, held: tuple[str, ...]) -> bool:
    """Whether `held` (v1) still grants all of `scope` (v1 or v2), exactly or by `*`."""
    parsed = smart_scopes.parse(scope)
    return parsed is not None and all(
        smart_scopes.covered(parsed.resource_type, action, held) for action in parsed.actions)


def granted_scopes(client: ApiClient, requested: object) -> tuple[str, ...]:
    """The scopes a token gets: those asked for (default: all the client holds) narrowed to
    what it holds; scopes this server does not know are left out (RFC 6749 §3.3).

    Raises:
        InvalidScopeError: nothing asked for can be granted.
    """
    held = tuple(client.scopes.split())
    if not isinstance(requested, str) or not requested.strip():
        return held
    granted = smart_scopes.grant(smart_scopes.split(requested), held)
    if not granted:
        raise InvalidScopeError(
            f"none of the requested scopes is granted to this client; it may ask for "
            f"{' '.join(held)} (or their SMART v2 forms, e.g. system/Patient.rs)")
    return tuple(dict.fromkeys(scope.text() for scope in granted))
