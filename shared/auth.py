"""Who is calling and for which org: Bearer JWT plus X-Org-ID, the contract's rules."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from .domain.validation import ORG_ID_PATTERN

ALLOWED_ROLES = frozenset({"admin", "super_admin"})


class AuthError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Caller:
    subject: str
    org_id: str  # the org this request acts in
    roles: frozenset[str]


def _jwks_keys(text: str) -> dict[str | None, Any]:
    """The RSA signing keys of a JWKS document, by key id."""
    try:
        jwks = jwt.PyJWKSet.from_json(text)
    except jwt.PyJWTError as exc:
        raise ValueError(f"the JWKS file has no usable key: {exc}") from None
    keys = {k.key_id: k.key for k in jwks.keys if k.key_type == "RSA" and k.public_key_use in (None, "sig")}
    if not keys:
        raise ValueError("the JWKS file has no RSA signing key")
    return keys


class TokenVerifier:
    """HS256 with a shared secret, or RS256 with a public key file: a PEM key, or a JWKS document
    (`{"keys": [...]}`) whose key is chosen by the token's `kid`."""

    def __init__(self, algorithm: str, secret: str | None = None, public_key_file: str | None = None) -> None:
        if algorithm not in ("HS256", "RS256"):
            raise ValueError("jwt algorithm must be HS256 or RS256")
        key = secret if algorithm == "HS256" else (Path(public_key_file).read_text() if public_key_file else None)
        if not key:
            raise ValueError(f"{algorithm} needs {'a jwt secret' if algorithm == 'HS256' else 'a public key file'}")
        self._algorithm, self._key = algorithm, key
        self._jwks = _jwks_keys(key) if algorithm == "RS256" and key.lstrip().startswith("{") else None
        if algorithm == "RS256" and self._jwks is None:
            try:  # a key file that is not a usable key fails at start, not as a 500 on every request
                self._key = jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).prepare_key(key)
            except (jwt.PyJWTError, ValueError) as exc:
                raise ValueError(f"the public key file holds no RSA key: {exc}") from None

    def _key_for(self, token: str) -> Any:
        if self._jwks is None:
            return self._key
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, (str, type(None))):
            raise jwt.InvalidTokenError("kid must be a string")
        if kid in self._jwks:
            return self._jwks[kid]
        if kid is None and len(self._jwks) == 1:
            return next(iter(self._jwks.values()))
        raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS file")

    def caller(self, authorization: str | None, org_header: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "UNAUTHORIZED", "missing Bearer token")
        try:
            # The algorithm is pinned: a token signed any other way (or 'none') is refused.
            claims = jwt.decode(token.strip(), self._key_for(token.strip()), algorithms=[self._algorithm], options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise AuthError(401, "UNAUTHORIZED", "token expired") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(401, "UNAUTHORIZED", f"invalid token: {exc}") from None
        roles = claims.get("roles")
        roles = frozenset(r for r in roles if isinstance(r, str)) if isinstance(roles, list) else frozenset()
        if not roles & ALLOWED_ROLES:
            raise AuthError(403, "FORBIDDEN", "admin or super_admin role required")
        if not org_header:
            raise AuthError(400, "VALIDATION_ERROR", "X-Org-ID header is required")
        if not ORG_ID_PATTERN.match(org_header):
            # Org ids name S3 prefixes and store partitions: no '/', no '..', nothing ambiguous.
            raise AuthError(400, "VALIDATION_ERROR", "X-Org-ID must be 1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
        if "super_admin" not in roles and claims.get("org") != org_header:
            raise AuthError(403, "FORBIDDEN", "an admin may act only in the org of its token")
        return Caller(str(claims["sub"]), org_header, roles)


def issue_dev_token(secret: str, org_id: str, role: str = "admin", subject: str = "dev-admin", ttl_seconds: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": subject, "org": org_id, "roles": [role], "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")
