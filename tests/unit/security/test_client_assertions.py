"""private_key_jwt: SMART Backend Services clients sign their token requests (RS384/ES384)."""

from __future__ import annotations

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from csss_fhir.cli import cli
from csss_fhir.models import ApiClient, UsedClientAssertion, db
from csss_fhir.security import client_assertions
from tests.factories import parse_fhir

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP384R1())


def _public_jwk(private_key, kid: str) -> dict:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid}


def _register(runner, tmp_path, *keys, scopes: str = "system/*.read") -> str:
    path = tmp_path / f"jwks-{uuid.uuid4().hex}.json"
    path.write_text(json.dumps({"keys": [_public_jwk(key, f"k{i}")
                                         for i, key in enumerate(keys)]}))
    result = runner.invoke(cli, args=["clients", "create", f"Backend {uuid.uuid4().hex[:8]}",
                                      "--scopes", scopes, "--jwks", str(path)])
    assert result.exit_code == 0, result.output
    assert "client_secret" not in result.stdout
    return dict(line.split("=", 1) for line in result.stdout.split() if "=" in line)["client_id"]


def _token_url(client) -> str:
    return client.get("/.well-known/smart-configuration").get_json()["token_endpoint"]


def _assertion(client_id: str, key, *, aud: str, alg: str = "RS384", kid: str = "k0",
               **overrides) -> str:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 240,
              "jti": uuid.uuid4().hex, **overrides}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm=alg,
                      headers={"kid": kid})


def _request(client, assertion: str, **extra):
    return client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion, **extra})


def _refused(response, status: int = 401, error: str = "invalid_client") -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error
    return body["error_description"]


def test_rs384_assertion_gets_a_token_that_reads(runner, client, tmp_path, rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    response = _request(client, _assertion(client_id, rsa_key, aud=_token_url(client)),
                        scope="system/Patient.rs")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["scope"] == "system/Patient.rs" and body["token_type"] == "Bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/fhir/Patient", headers=headers).status_code == 200


def test_es384_assertion_with_matching_client_id_is_accepted(runner, client, tmp_path,
                                                             rsa_key, ec_key):
    client_id = _register(runner, tmp_path, rsa_key, ec_key)
    assertion = _assertion(client_id, ec_key, aud=_token_url(client), alg="ES384", kid="k1")
    assert _request(client, assertion, client_id=client_id).status_code == 200


def test_a_replayed_jti_is_refused(app, runner, client, tmp_path, rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    assertion = _assertion(client_id, rsa_key, aud=_token_url(client))
    assert _request(client, assertion).status_code == 200
    assert "already used" in _refused(_request(client, assertion))
    with app.app_context():
        assert db.session.get(UsedClientAssertion, (client_id, jwt.decode(
            assertion, options={"verify_signature": False})["jti"])) is not None


@pytest.mark.parametrize("overrides, says", [
    ({"exp": int(time.time()) - 120}, "expired"),
    ({"exp": int(time.time()) + 3600}, "5 minutes"),
    ({"aud": "https://elsewhere.example/token"}, "token URL"),
    ({"sub": "someone-else"}, "sub"),
    ({"jti": None}, "jti"),
])
def test_assertions_breaking_a_rule_are_refused(runner, client, tmp_path, rsa_key, overrides,
                                                says):
    client_id = _register(runner, tmp_path, rsa_key)
    claims = {"aud": _token_url(client), **overrides}
    assertion = _assertion(client_id, rsa_key, **claims)
    assert says in _refused(_request(client, assertion))


def test_a_token_signed_by_another_key_is_refused(runner, client, tmp_path, rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assertion = _assertion(client_id, intruder, aud=_token_url(client))
    assert "Signature" in _refused(_request(client, assertion))


def test_alg_none_and_hmac_with_the_public_key_are_refused(runner, client, tmp_path, rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    unsigned = _assertion(client_id, None, aud=_token_url(client), alg="none")
    assert "'none'" in _refused(_request(client, unsigned))
    public_modulus = _public_jwk(rsa_key, "k0")["n"]  # what an attacker knows
    confused = _assertion(client_id, public_modulus, aud=_token_url(client), alg="HS256")
    assert "'HS256'" in _refused(_request(client, confused))


def test_unknown_issuer_and_wrong_assertion_type_are_refused(runner, client, tmp_path,
                                                             rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    ghost = _assertion("no-such-client", rsa_key, aud=_token_url(client))
    _refused(_request(client, ghost))
    good = _assertion(client_id, rsa_key, aud=_token_url(client))
    wrong_type = client.post("/auth/token", data={
        "grant_type": "client_credentials", "client_assertion_type": "urn:example:saml",
        "client_assertion": good})
    _refused(wrong_type, 400, "invalid_request")
    _refused(_request(client, good, client_id="another-client"), 400, "invalid_request")


def test_a_jwks_client_has_no_secret_to_guess(app, runner, client, tmp_path, rsa_key):
    client_id = _register(runner, tmp_path, rsa_key)
    with app.app_context():
        assert db.session.get(ApiClient, client_id).secret_hash is None
    response = client.post("/auth/token", data={"grant_type": "client_credentials",
                                                "client_id": client_id, "client_secret": ""})
    _refused(response)


def test_registration_refuses_private_or_symmetric_keys(rsa_key):
    private = RSAAlgorithm.to_jwk(rsa_key, as_dict=True)
    with pytest.raises(Exception, match="private key material"):
        client_assertions.parse_jwks({"keys": [private]})
    with pytest.raises(Exception, match="kty 'oct'"):
        client_assertions.parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
    with pytest.raises(Exception, match="P-384"):
        client_assertions.parse_jwks({"keys": [ECAlgorithm.to_jwk(
            ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)]})


def test_smart_configuration_advertises_private_key_jwt(client):
    config = client.get("/.well-known/smart-configuration").get_json()
    assert config["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post", "private_key_jwt"]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert "system/Patient.rs" in config["scopes_supported"]
    capability = parse_fhir(client.get("/fhir/metadata").data, "CapabilityStatement")
    assert "private_key_jwt" in capability.rest[0].security.description
