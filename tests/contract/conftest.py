"""Helpers for the contract tests: raw requests, hand-made tokens, and checks that nothing was written."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx
import jwt
import pytest
from pymongo import AsyncMongoClient

from ..conftest import org_items, org_records, org_users  # noqa: F401  (re-exported for the contract tests)
from ..conftest import Api, new_org

ISO_MS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
USR_ID = r"^usr_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
JOB_ID = r"^job_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def token(secret: str, org: str | None, roles: Any = ("admin",), algorithm: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"sub": "tester", "iat": now, "exp": now + 600, **claims}
    if org is not None:
        body["org"] = org
    if roles is not None:
        body["roles"] = list(roles) if isinstance(roles, tuple) else roles
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, secret, algorithm=algorithm)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error envelope with this status and code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "error"} and body["success"] is False, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]


def ok_data(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"success", "data"} and body["success"] is True, body
    return body["data"]


def counts(data: dict[str, Any]) -> tuple[int, ...]:
    total = data["total"] if "total" in data else data["processed"]
    return (total, data["created"], data["updated"], data["skipped"], data["failed"])


def statuses(results: list[dict[str, Any]]) -> list[str]:
    return [r["status"] if r["status"] != "failed" else "failed:" + r["error"]["code"] for r in results]


async def post_raw(dev, org: str, content: Any, headers: dict[str, str] | None = None, bearer: str | None = None) -> httpx.Response:
    auth = {"Authorization": f"Bearer {bearer or token(dev.jwtSecret, org)}", "X-Org-ID": org, "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(f"{dev.ingestUrl}/v1/bulk/users", content=content, headers={**auth, **(headers or {})})


async def poll(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Call `check` until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {value!r})")
        await asyncio.sleep(interval)


@pytest.fixture(scope="session")
async def mongo_jobs(settings) -> AsyncIterator[Any]:
    client: AsyncMongoClient = AsyncMongoClient(settings.mongo_uri)
    yield client[settings.mongo_db]["jobs"]
    await client.close()


@pytest.fixture(scope="session")
def s3(importer_adapters):
    return importer_adapters.objects._client


@pytest.fixture(scope="session")
def bucket(importer_adapters) -> str:
    return importer_adapters.objects.bucket


async def s3_keys(s3, bucket: str, prefix: str) -> list[str]:
    response = await s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for o in response.get("Contents", [])]


@pytest.fixture
def nothing_written(user_store, s3, bucket, mongo_jobs) -> Callable[[str], Awaitable[None]]:
    """No user record, no stored request or result, no job for the org."""

    async def check(org: str) -> None:
        assert await org_items(user_store, org) == []
        assert await s3_keys(s3, bucket, f"requests/{org}/") == []
        assert await s3_keys(s3, bucket, f"results/{org}/") == []
        assert await mongo_jobs.count_documents({"orgId": org}) == 0

    return check


@pytest.fixture
async def api_factory(system) -> AsyncIterator[Callable[..., Api]]:
    made: list[Api] = []

    def make(org: str | None = None, role: str = "admin") -> Api:
        client = Api(system, org or new_org(), role=role)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def super_admin_for(dev, org: str) -> Api:
    """A super admin whose token names some other org, acting for `org` through X-Org-ID."""
    client = Api(dev, org, role="super_admin")
    client.token = token(dev.jwtSecret, "org-platform-" + uuid.uuid4().hex[:6], roles=("super_admin",))
    client.http.headers["Authorization"] = f"Bearer {client.token}"
    return client
