"""RS256 for production (BULKOPS_JWT_ALGORITHM=RS256 + BULKOPS_JWT_PUBLIC_KEY_FILE): the verifier alone."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import AuthError, TokenVerifier


def _private_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _public_pem(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**extra) -> dict:
    return {"sub": "ops", "org": "org-a", "roles": ["admin"], "exp": int(time.time()) + 600, **extra}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_file = tmp_path_factory.mktemp("keys") / "jwt-public.pem"
    public_file.write_bytes(_public_pem(key))
    return key, public_file


@pytest.fixture(scope="module")
def verifier(keys) -> TokenVerifier:
    return TokenVerifier("RS256", public_key_file=str(keys[1]))


def _reject(verifier: TokenVerifier, raw_token: str, org: str = "org-a") -> AuthError:
    with pytest.raises(AuthError) as refused:
        verifier.caller(f"Bearer {raw_token}", org)
    return refused.value


def test_a_valid_rs256_token_is_accepted(verifier, keys):
    caller = verifier.caller("Bearer " + jwt.encode(_claims(), _private_pem(keys[0]), algorithm="RS256"), "org-a")
    assert (caller.subject, caller.org_id, caller.roles) == ("ops", "org-a", frozenset({"admin"}))


def test_rs256_keeps_the_role_and_org_rules(verifier, keys):
    pem = _private_pem(keys[0])
    assert _reject(verifier, jwt.encode(_claims(roles=["user"]), pem, algorithm="RS256")).status == 403
    assert _reject(verifier, jwt.encode(_claims(), pem, algorithm="RS256"), org="org-b").status == 403
    assert _reject(verifier, jwt.encode(_claims(exp=int(time.time()) - 5), pem, algorithm="RS256")).status == 401
    caller = verifier.caller("Bearer " + jwt.encode(_claims(roles=["super_admin"]), pem, algorithm="RS256"), "org-b")
    assert caller.org_id == "org-b"


def test_an_hs256_token_signed_with_the_public_key_text_is_refused(verifier, keys):
    """Algorithm confusion: the public key is no secret, so an HMAC made with it must not pass."""
    public_text = keys[1].read_bytes()
    for secret in (public_text, public_text.strip()):
        signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(_claims()).encode())}"
        signature = _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
        error = _reject(verifier, f"{signing_input}.{signature}")
        assert (error.status, error.code) == (401, "UNAUTHORIZED")


def test_rs256_refuses_another_key_alg_none_and_other_algorithms(verifier, keys):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert _reject(verifier, jwt.encode(_claims(), _private_pem(other), algorithm="RS256")).status == 401
    assert _reject(verifier, jwt.encode(_claims(), _private_pem(keys[0]), algorithm="RS512")).status == 401
    assert _reject(verifier, jwt.encode(_claims(), _private_pem(keys[0]), algorithm="PS256")).status == 401
    unsigned = f"{_b64(json.dumps({'alg': 'none'}).encode())}.{_b64(json.dumps(_claims()).encode())}."
    assert _reject(verifier, unsigned).status == 401


def test_an_hs256_verifier_refuses_rs256_tokens(keys):
    hs = TokenVerifier("HS256", secret="a-dev-secret-that-is-long-enough-32b")
    error = _reject(hs, jwt.encode(_claims(), _private_pem(keys[0]), algorithm="RS256"))
    assert (error.status, error.code) == (401, "UNAUTHORIZED")


def test_the_verifier_needs_its_key_and_a_known_algorithm(keys):
    with pytest.raises(ValueError):
        TokenVerifier("RS256")
    with pytest.raises(ValueError):
        TokenVerifier("HS256")
    with pytest.raises(ValueError):
        TokenVerifier("none", secret="x")
    with pytest.raises(ValueError):
        TokenVerifier("HS512", secret="x")


# -- a JWKS file instead of a PEM key (the issue: "a configured public key or JWKS file") -------------


def _jwk(key, kid: str | None, **extra) -> dict:
    document = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**document, **({"kid": kid} if kid else {}), "use": "sig", **extra}


@pytest.fixture(scope="module")
def jwks(tmp_path_factory):
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(first, "k1"), _jwk(second, "k2"), {"kty": "oct", "k": _b64(b"s" * 32), "kid": "hmac"}]}))
    return {"k1": first, "k2": second}, path


def test_rs256_with_a_jwks_file_picks_the_key_by_kid(jwks):
    keys, path = jwks
    verifier = TokenVerifier("RS256", public_key_file=str(path))
    for kid, key in keys.items():
        token = jwt.encode(_claims(), _private_pem(key), algorithm="RS256", headers={"kid": kid})
        assert verifier.caller(f"Bearer {token}", "org-a").subject == "ops"
    # Signed by k1 but naming k2, naming no key, naming an unknown key or the HMAC entry: refused.
    for kid in ("k2", None, "k3", "hmac"):
        headers = {"kid": kid} if kid is not None else {}
        token = jwt.encode(_claims(), _private_pem(keys["k1"]), algorithm="RS256", headers=headers)
        assert (_reject(verifier, token).status, kid) == (401, kid)
    # Algorithm confusion with the JWKS text as an HMAC secret.
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'kid': 'k1'}).encode())}.{_b64(json.dumps(_claims()).encode())}"
    signature = _b64(hmac.new(path.read_bytes(), signing_input.encode(), hashlib.sha256).digest())
    assert _reject(verifier, f"{signing_input}.{signature}").status == 401


def test_a_jwks_file_with_one_key_accepts_tokens_without_kid(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(key, None)]}))
    verifier = TokenVerifier("RS256", public_key_file=str(path))
    assert verifier.caller("Bearer " + jwt.encode(_claims(), _private_pem(key), algorithm="RS256"), "org-a").org_id == "org-a"


def test_a_jwks_file_without_an_rsa_signing_key_is_refused_at_start(tmp_path):
    path = tmp_path / "jwks.json"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for document in ({"keys": []}, {"keys": [{"kty": "oct", "k": _b64(b"s" * 32)}]}, {"keys": [_jwk(key, "e", use="enc")]}):
        path.write_text(json.dumps(document))
        with pytest.raises(ValueError):
            TokenVerifier("RS256", public_key_file=str(path))


def test_a_public_key_file_without_an_rsa_key_is_refused_at_start(tmp_path):
    path = tmp_path / "key.pem"
    for text in ("not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"):
        path.write_text(text)
        with pytest.raises(ValueError):
            TokenVerifier("RS256", public_key_file=str(path))
