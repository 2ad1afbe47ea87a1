"""`private_key_jwt` client authentication: SMART Backend Services' signed client assertion.

A registered client proves who it is with a short-lived JWT signed by its private key
(RS384 or ES384), which we check against the public JWKS registered for it. The rules are
SMART Backend Services' (and RFC 7523's): `iss` = `sub` = the client id, `aud` = our token
URL, `exp` at most five minutes ahead, and a `jti` never seen before from this client
(kept until the assertion expires). `alg: none` and HMAC are refused, whatever the header
says: only the asymmetric algorithms are ever passed to PyJWT.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import jwt
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from csss_fhir.errors import InvalidInputError
from csss_fhir.models import ApiClient, UsedClientAssertion, utcnow
from csss_fhir.security.errors import NotAuthenticatedError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_LIFETIME = timedelta(minutes=5)
# Clock skew we forgive between the client and us, on exp, nbf and iat.
LEEWAY = timedelta(seconds=30)
_KEY_TYPES = {"RSA": "RS384", "EC": "ES384"}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")


def parse_jwks(text: str | bytes | dict) -> dict:
    """A client's public JWKS, checked: every key RSA or EC P-384, none private.

    Raises:
        InvalidInputError: not JSON, no keys, a private or symmetric key, an unusable key.
    """
    try:
        jwks = json.loads(text) if isinstance(text, (str, bytes)) else text
    except ValueError as err:
        raise InvalidInputError(f"the JWKS is not JSON ({err}); expected "
                                '{"keys": [{"kty": "RSA" | "EC", ...}]}') from err
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidInputError('the JWKS has no "keys" list; expected '
                                '{"keys": [{"kty": "RSA" | "EC", ...}]}')
    for index, key in enumerate(keys):
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            kind = key.get("kty") if isinstance(key, dict) else type(key).__name__
            raise InvalidInputError(f"key {index} has kty {kind!r}; expected RSA (for RS384) "
                                    "or EC (for ES384)")
        if any(member in key for member in _PRIVATE_MEMBERS):
            raise InvalidInputError(f"key {index} holds private key material: register the "
                                    "public keys only, and keep the private key with the "
                                    "client")
        if key["kty"] == "EC" and key.get("crv") != "P-384":
            raise InvalidInputError(f"key {index} is on curve {key.get('crv')!r}; ES384 "
                                    "needs P-384")
        try:
            jwt.PyJWK(key, algorithm=_KEY_TYPES[key["kty"]])
        except (jwt.PyJWTError, ValueError, TypeError, KeyError) as err:
            raise InvalidInputError(f"key {index} cannot be read ({err})") from err
    return {"keys": keys}


def _keys_for(client: ApiClient, header: dict) -> list[jwt.PyJWK]:
    """The client's keys that may have signed a token with this header (by kid and alg)."""
    alg, kid = header.get("alg"), header.get("kid")
    return [jwt.PyJWK(key, algorithm=alg) for key in (client.jwks or {}).get("keys", [])
            if _KEY_TYPES.get(key.get("kty")) == alg and (kid is None or key.get("kid") == kid)]


def claimed_client_id(assertion: object) -> str | None:
    """The client id an assertion claims (`iss`), read without trusting it."""
    if not isinstance(assertion, str):
        return None
    try:
        issuer = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


def verify(session: Session, client: ApiClient | None, assertion: object, *, token_url: str,
           now: datetime | None = None) -> ApiClient:
    """Check a client assertion and record its `jti`; the client it authenticates.

    Raises:
        NotAuthenticatedError: no such client or no JWKS, bad signature or alg, wrong
            iss/sub/aud, expired or too long-lived, or a jti already used. The message
            says which rule failed (none of it is secret), so an integrator can fix it.
    """
    now = now or utcnow()
    if client is None or not client.active or not client.jwks:
        raise NotAuthenticatedError("the client assertion's issuer is not a client registered "
                                    "with a JWKS")
    if not isinstance(assertion, str):
        raise NotAuthenticatedError("client_assertion must be a signed JWT")
    try:
        header = jwt.get_unverified_header(assertion)
        if header.get("alg") not in ALGORITHMS:
            raise NotAuthenticatedError(
                f"the client assertion is signed with {header.get('alg')!r}; expected one of "
                f"{', '.join(ALGORITHMS)}")
        keys = _keys_for(client, header)
        if not keys:
            raise NotAuthenticatedError(
                f"no key in the client's JWKS matches kid {header.get('kid')!r} and alg "
                f"{header['alg']}; register the key or send its kid")
        claims = _decode(assertion, keys, client_id=client.id, token_url=token_url, now=now)
    except jwt.InvalidAudienceError as err:
        raise NotAuthenticatedError(f"the client assertion's aud must be this server's token "
                                    f"URL, {token_url}") from err
    except jwt.ExpiredSignatureError as err:
        raise NotAuthenticatedError("the client assertion has expired; sign a fresh one for "
                                    "every token request") from err
    except jwt.PyJWTError as err:
        raise NotAuthenticatedError(f"the client assertion was refused: {err}") from err
    if claims.get("sub") != client.id:
        raise NotAuthenticatedError("the client assertion's sub must equal its iss (the "
                                    "client id)")
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    if expires - now > MAX_LIFETIME + LEEWAY:
        raise NotAuthenticatedError("the client assertion expires more than 5 minutes from "
                                    "now; sign one with a shorter exp")
    jti = claims["jti"]
    if not isinstance(jti, str) or not 0 < len(jti) <= 255:
        raise NotAuthenticatedError("the client assertion's jti must be a string of 1-255 "
                                    "characters")
    _remember(session, client, jti, expires, now)
    return client


def _decode(assertion: str, keys: list[jwt.PyJWK], *, client_id: str, token_url: str,
            now: datetime) -> dict:
    last: jwt.PyJWTError | None = None
    for key in keys:  # several keys may share a kid during a rotation
        try:
            return jwt.decode(
                assertion, key, algorithms=list(ALGORITHMS), audience=token_url,
                issuer=client_id, leeway=LEEWAY,
                options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            )
        except jwt.InvalidSignatureError as err:
            last = err
    assert last is not None
    raise last


def _remember(session: Session, client: ApiClient, jti: str, expires: datetime,
              now: datetime) -> None:
    """Record the jti; refuse it if this client used it before. Forgets expired ones."""
    session.execute(delete(UsedClientAssertion).where(UsedClientAssertion.expires_at < now))
    if session.get(UsedClientAssertion, (client.id, jti)) is not None:
        raise NotAuthenticatedError("this client assertion (its jti) was already used; sign "
                                    "a new one for every token request")
    session.add(UsedClientAssertion(client_id=client.id, jti=jti,
                                    expires_at=expires + LEEWAY))
    try:
        session.flush()
    except IntegrityError as err:  # the same assertion, sent twice at once
        session.rollback()
        raise NotAuthenticatedError("this client assertion (its jti) was already used; sign "
                                    "a new one for every token request") from err
