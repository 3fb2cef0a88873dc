"""One running system for the whole session: real servers plus the three services as processes."""
from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import httpx
import pytest

from bulkops.devstack import DevStack, settings_for, start_services
from bulkops.stack import Endpoints, stop_pids
from shared.adapters.user_store import stored_user
from shared.auth import issue_dev_token
from shared.domain.model import StoredUser

from .servers import test_servers

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CSV = ROOT / "data" / "users-10k.csv"


@pytest.fixture(scope="session")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    with test_servers(tmp_path_factory.mktemp("servers")) as found:
        yield found


@pytest.fixture(scope="session")
def system(endpoints: Endpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    workdir = tmp_path_factory.mktemp("system")
    dev = start_services(endpoints, workdir, secrets.token_urlsafe(32), importers=1)
    dev.save(workdir / "dev.json")  # so `bulkops --workdir` finds it, as after `bulkops dev up`
    yield dev
    stop_pids(list(dev.pids.values()))


@pytest.fixture(scope="session")
def settings(endpoints: Endpoints):
    return settings_for(endpoints)


def new_org() -> str:
    return "org-" + uuid.uuid4().hex[:10]


class Api:
    """An admin's HTTP client for one org."""

    def __init__(self, dev: DevStack, org: str, role: str = "admin") -> None:
        self.dev, self.org = dev, org
        self.token = issue_dev_token(dev.jwtSecret, org, role=role)
        self.http = httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {self.token}", "X-Org-ID": org})

    async def import_users(self, users: list[Any], **options: bool) -> httpx.Response:
        body: dict[str, Any] = {"users": users}
        if options:
            body["options"] = options
        return await self.http.post(f"{self.dev.ingestUrl}/v1/bulk/users", json=body)

    async def job(self, job_id: str) -> httpx.Response:
        return await self.http.get(f"{self.dev.jobsUrl}/v1/bulk/jobs/{job_id}")

    async def wait_for_job(self, job_id: str, timeout: float = 120.0, via_ingest: bool = True) -> dict[str, Any]:
        """Poll until the job ends. A job ingest accepted is never 404; one published straight on
        Kafka by another service is unknown until its first event is projected."""
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while time.monotonic() < deadline:
            response = await self.job(job_id)
            if response.status_code == 404 and not via_ingest and not seen:
                await asyncio.sleep(0.2)
                continue
            assert response.status_code == 200, response.text
            data = response.json()["data"]
            seen.append(data["processed"])
            assert seen == sorted(seen), f"processed went backwards: {seen}"
            if data["status"] in ("completed", "failed"):
                return data
            await asyncio.sleep(0.2)
        raise AssertionError(f"job {job_id} did not finish in {timeout} s (last processed: {seen[-1:]})")

    async def results(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        import json

        response = await self.http.get(job["downloadUrl"], headers={"Authorization": ""})
        assert response.status_code == 200, response.text
        return [json.loads(line) for line in response.text.splitlines() if line]

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def api(system: DevStack) -> AsyncIterator[Api]:
    client = Api(system, new_org())
    yield client
    await client.close()


@pytest.fixture(scope="session")
async def importer_adapters(system, settings, endpoints: Endpoints):
    """The importer's own adapters, in this process, against the same servers: for tests that call
    the handler directly (twice, or interrupted) and watch every BatchWriteItem call it makes."""
    from contextlib import AsyncExitStack

    from faststream.kafka import KafkaBroker

    from services.importer.adapters import open_adapters
    from services.importer.settings import ImporterSettings

    importer_settings = ImporterSettings(**settings.model_dump())
    broker = KafkaBroker(endpoints.kafka_bootstrap)
    async with AsyncExitStack() as stack:
        await broker.start()
        stack.push_async_callback(broker.stop)
        yield await open_adapters(importer_settings, stack, broker)


@pytest.fixture(scope="session")
def user_store(importer_adapters):
    return importer_adapters.users


class BatchWriteWatch:
    """Every BatchWriteItem request the client sends: real DynamoDB rejects more than 25 items or
    two writes for one key in one call, and the emulator does not, so the tests check it here."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, params: dict[str, Any], **_: Any) -> None:
        for requests in params["RequestItems"].values():
            keys = []
            for request in requests:
                body = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
                keys.append(body["orgId"]["S"] + "/" + body["key"]["S"])
            self.calls.append(keys)

    def assert_within_dynamodb_limits(self) -> None:
        assert self.calls, "no BatchWriteItem call was seen"
        for keys in self.calls:
            assert 1 <= len(keys) <= 25, len(keys)
            assert len(set(keys)) == len(keys), "two writes for one key in one batch"


@pytest.fixture
def batch_writes(importer_adapters) -> Iterator[BatchWriteWatch]:
    watch = BatchWriteWatch()
    events = importer_adapters.users._client.meta.events
    events.register("provide-client-params.dynamodb.BatchWriteItem", watch)
    yield watch
    events.unregister("provide-client-params.dynamodb.BatchWriteItem", watch)


async def org_items(user_store, org: str) -> list[dict[str, Any]]:
    """Every record of an org in the user store (users, email claims, census, import bookkeeping)."""
    items, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = await user_store._client.query(
            TableName=user_store.table, KeyConditionExpression="orgId = :o",
            ExpressionAttributeValues={":o": {"S": org}}, ConsistentRead=True, **kwargs,
        )
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if not start:
            return sorted(items, key=lambda i: i["key"]["S"])


async def org_records(user_store, org: str) -> list[dict[str, Any]]:
    """The org's users and email claims, without its census and import bookkeeping."""
    return [i for i in await org_items(user_store, org) if i["key"]["S"].startswith(("user#", "email#"))]


async def org_users(user_store, org: str) -> dict[str, StoredUser]:
    """Every user of an org, decoded, by userId."""
    return {u.user_id: u for u in (stored_user(i) for i in await org_items(user_store, org) if i["key"]["S"].startswith("user#"))}
