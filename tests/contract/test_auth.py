"""Authentication and roles: Bearer JWT + X-Org-ID on both endpoints (contract "Conventions")."""
from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..conftest import Api, new_org
from .conftest import assert_error, ok_data, token

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
ENDPOINTS = ("POST /v1/bulk/users", "GET /v1/bulk/jobs/{id}")


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned(org: str, alg: str = "none") -> str:
    now = int(time.time())
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64({'sub': 's', 'org': org, 'roles': ['admin'], 'exp': now + 600})}."


def _rs256(org: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return jwt.encode({"sub": "s", "org": org, "roles": ["admin"], "exp": int(time.time()) + 600}, pem, algorithm="RS256")


def _tampered(secret: str, org: str) -> str:
    """A valid token for another org whose payload was swapped for one naming `org`: the signature no longer matches."""
    header, _, signature = token(secret, "org-elsewhere").split(".")
    payload = _b64({"sub": "s", "org": org, "roles": ["super_admin"], "exp": int(time.time()) + 600})
    return f"{header}.{payload}.{signature}"


UNAUTHORIZED = {
    "no Authorization header": lambda secret, org: None,
    "Bearer without a token": lambda secret, org: "Bearer",
    "Basic scheme": lambda secret, org: "Basic " + base64.b64encode(b"admin:admin").decode(),
    "token without Bearer": lambda secret, org: token(secret, org),
    "not a JWT": lambda secret, org: "Bearer not-a-jwt",
    "expired": lambda secret, org: "Bearer " + token(secret, org, exp=int(time.time()) - 30),
    "no exp claim": lambda secret, org: "Bearer " + jwt.encode({"sub": "s", "org": org, "roles": ["admin"]}, secret, algorithm="HS256"),
    "wrong signature": lambda secret, org: "Bearer " + token("some-other-secret-of-32-bytes-min!", org),
    "tampered payload": lambda secret, org: "Bearer " + _tampered(secret, org),
    "alg none": lambda secret, org: "Bearer " + _unsigned(org),
    "alg None, signature stripped": lambda secret, org: "Bearer " + _unsigned(org, alg="None"),
    "HS512 with the right secret": lambda secret, org: "Bearer " + token(secret, org, algorithm="HS512"),
    "HS384 with the right secret": lambda secret, org: "Bearer " + token(secret, org, algorithm="HS384"),
    "RS256 with some RSA key": lambda secret, org: "Bearer " + _rs256(org),
}

FORBIDDEN_ROLES = {
    "role user": ["user"],
    "role viewer": ["viewer"],
    "no roles": [],
    "roles missing": None,
    "roles a string, not a list": "admin",
    "role ADMIN (case matters)": ["ADMIN"],
}


@pytest.fixture(scope="module")
async def org_with_job(system):
    """An org with a finished async job, so that GET answers 200 to an allowed caller."""
    api = Api(system, new_org())
    try:
        response = await api.import_users([{"userId": f"j{i}"} for i in range(100)])
        job_id = ok_data(response, 202)["jobId"]
        await api.wait_for_job(job_id)
        yield api.org, job_id
    finally:
        await api.close()


async def _call(system, endpoint: str, org_job: tuple[str, str], headers: dict[str, str], probe: str) -> httpx.Response:
    org, job_id = org_job
    async with httpx.AsyncClient(timeout=30) as client:
        if endpoint.startswith("POST"):
            return await client.post(f"{system.ingestUrl}/v1/bulk/users", json={"users": [{"userId": probe}]}, headers=headers)
        return await client.get(f"{system.jobsUrl}/v1/bulk/jobs/{job_id}", headers=headers)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(UNAUTHORIZED))
async def test_a_missing_malformed_expired_or_wrongly_signed_token_is_401(system, org_with_job, user_store, endpoint, case):
    org = org_with_job[0]
    authorization = UNAUTHORIZED[case](system.jwtSecret, org)
    headers = {"X-Org-ID": org} | ({"Authorization": authorization} if authorization is not None else {})
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    assert_error(await _call(system, endpoint, org_with_job, headers, probe), 401, "UNAUTHORIZED")
    assert await user_store.get_user(org, probe) is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("case", list(FORBIDDEN_ROLES))
async def test_a_valid_token_without_an_allowed_role_is_403(system, org_with_job, user_store, endpoint, case):
    org = org_with_job[0]
    headers = {"Authorization": "Bearer " + token(system.jwtSecret, org, roles=FORBIDDEN_ROLES[case]), "X-Org-ID": org}
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    assert_error(await _call(system, endpoint, org_with_job, headers, probe), 403, "FORBIDDEN")
    assert await user_store.get_user(org, probe) is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
async def test_an_admin_naming_another_org_is_403(system, org_with_job, user_store, endpoint):
    org = org_with_job[0]
    other = new_org()
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    # An admin of `other` naming the job's org, and an admin of the job's org naming `other`.
    for token_org, header_org in ((other, org), (org, other)):
        headers = {"Authorization": "Bearer " + token(system.jwtSecret, token_org), "X-Org-ID": header_org}
        assert_error(await _call(system, endpoint, org_with_job, headers, probe), 403, "FORBIDDEN")
    # An admin token without any org claim is held to no org at all.
    headers = {"Authorization": "Bearer " + token(system.jwtSecret, None), "X-Org-ID": org}
    assert_error(await _call(system, endpoint, org_with_job, headers, probe), 403, "FORBIDDEN")
    assert await user_store.get_user(org, probe) is None and await user_store.get_user(other, probe) is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ["admin", "super_admin"])
async def test_a_missing_x_org_id_is_400_validation_error(system, org_with_job, user_store, endpoint, role):
    org = org_with_job[0]
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    for headers in ({}, {"X-Org-ID": ""}, {"X-Org-ID": "a/b"}, {"X-Org-ID": "x..y"}, {"X-Org-ID": "o" * 129}):
        headers["Authorization"] = "Bearer " + token(system.jwtSecret, org, roles=(role,))
        assert_error(await _call(system, endpoint, org_with_job, headers, probe), 400, "VALIDATION_ERROR")
    assert await user_store.get_user(org, probe) is None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("token_org", ["org-of-the-platform", None])
async def test_a_super_admin_may_act_for_any_org(system, org_with_job, user_store, endpoint, token_org):
    org, job_id = org_with_job
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": "Bearer " + token(system.jwtSecret, token_org, roles=("super_admin",)), "X-Org-ID": org}
    data = ok_data(await _call(system, endpoint, org_with_job, headers, probe))
    if endpoint.startswith("POST"):
        assert [r["status"] for r in data["results"]] == ["created"]
        assert (await user_store.get_user(org, probe)).user_id == probe  # written in the org it named
    else:
        assert data["jobId"] == job_id and data["status"] == "completed"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("roles", [("admin",), ("user", "admin"), ("super_admin",)])
async def test_an_allowed_role_in_its_own_org_is_accepted(system, org_with_job, user_store, endpoint, roles):
    org, job_id = org_with_job
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": "bearer " + token(system.jwtSecret, org, roles=roles), "X-Org-ID": org}
    data = ok_data(await _call(system, endpoint, org_with_job, headers, probe))
    if endpoint.startswith("POST"):
        assert data["created"] == 1 and await user_store.get_user(org, probe) is not None
    else:
        assert data["jobId"] == job_id


async def test_auth_is_checked_before_the_body(system):
    org = new_org()
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            f"{system.ingestUrl}/v1/bulk/users", content=b"{not json", headers={"Content-Type": "text/plain", "X-Org-ID": org}
        )
    assert_error(response, 401, "UNAUTHORIZED")
