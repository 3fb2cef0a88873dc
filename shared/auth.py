"""Who is calling and for which org: Bearer JWT plus X-Org-ID, the contract's rules."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import jwt

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


class TokenVerifier:
    def __init__(self, algorithm: str, secret: str | None = None, public_key_file: str | None = None) -> None:
        if algorithm not in ("HS256", "RS256"):
            raise ValueError("jwt algorithm must be HS256 or RS256")
        key = secret if algorithm == "HS256" else (Path(public_key_file).read_text() if public_key_file else None)
        if not key:
            raise ValueError(f"{algorithm} needs {'a jwt secret' if algorithm == 'HS256' else 'a public key file'}")
        self._algorithm, self._key = algorithm, key

    def caller(self, authorization: str | None, org_header: str | None) -> Caller:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError(401, "UNAUTHORIZED", "missing Bearer token")
        try:
            # The algorithm is pinned: a token signed any other way (or 'none') is refused.
            claims = jwt.decode(token.strip(), self._key, algorithms=[self._algorithm], options={"require": ["exp", "sub"]})
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
        if "super_admin" not in roles and claims.get("org") != org_header:
            raise AuthError(403, "FORBIDDEN", "an admin may act only in the org of its token")
        return Caller(str(claims["sub"]), org_header, roles)


def issue_dev_token(secret: str, org_id: str, role: str = "admin", subject: str = "dev-admin", ttl_seconds: int = 3600) -> str:
    now = int(time.time())
    claims = {"sub": subject, "org": org_id, "roles": [role], "iat": now, "exp": now + ttl_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")
