"""GET /v1/bulk/jobs/{jobId}: statuses, counts, timestamps, the result file and its link, expiry."""
from __future__ import annotations

import asyncio
import re
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from shared.events import Counts, ErrorInfo, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, ObjectLocation, utc_now

from ..conftest import Api, new_org
from .conftest import ISO_MS, JOB_ID, assert_error, ok_data, poll, s3_keys

RANK = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}
JOB_FIELDS = {
    "jobId", "status", "totalRecords", "processed", "created", "updated", "skipped", "failed", "createdAt", "startedAt",
    "completedAt", "expiresAt", "downloadUrl", "downloadUrlExpiresAt", "error",
}


def parse(moment: str) -> datetime:
    assert re.match(ISO_MS, moment), moment
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def job_users() -> list[Any]:
    users: list[Any] = [{"userId": f"j{i}", "email": f"j{i}@jobs.io", "customFields": {"i": i}} for i in range(1200)]
    for i in range(0, 1200, 100):
        users[i] = {"userId": f"j{i}", "email": "broken"}  # 12 failed
    for i in range(1150, 1200):
        users[i] = {"userId": f"j{i - 1000}", "metadata": {"again": True}}  # 50 updated
    return users


@pytest.fixture(scope="module")
async def watched_job(system):
    """A 1,200-row job, watched from the 202 on: every answer of the status endpoint until it ends."""
    api = Api(system, new_org())
    users = job_users()
    try:
        posted_at = datetime.now(timezone.utc)
        accepted = ok_data(await api.import_users(users), 202)
        seen: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            response = await api.job(accepted["jobId"])
            seen.append((response.status_code, response.json()))
            if response.status_code != 200 or response.json()["data"]["status"] in ("completed", "failed"):
                break
            await asyncio.sleep(0.03)
        yield api, users, posted_at, accepted, seen
    finally:
        await api.close()


async def test_an_accepted_job_is_never_404_and_moves_pending_processing_completed(watched_job):
    api, users, _, accepted, seen = watched_job
    assert re.match(JOB_ID, accepted["jobId"]) and accepted["statusUrl"] == f"{api.dev.jobsUrl}/v1/bulk/jobs/{accepted['jobId']}"
    assert [status for status, _ in seen] == [200] * len(seen)
    views = [body["data"] for _, body in seen]
    states = [v["status"] for v in views]
    assert states[-1] == "completed", states[-5:]
    assert [RANK[s] for s in states] == sorted(RANK[s] for s in states), "status went backwards"
    processed = [v["processed"] for v in views]
    assert processed == sorted(processed), "processed went backwards"
    for view in views:
        assert set(view) == JOB_FIELDS
        assert view["processed"] == view["created"] + view["updated"] + view["skipped"] + view["failed"], view
        assert view["totalRecords"] == len(users) and view["error"] is None
        if view["status"] == "pending":
            assert (view["processed"], view["startedAt"], view["completedAt"], view["downloadUrl"]) == (0, None, None, None)
        if view["status"] == "processing":
            assert view["startedAt"] and view["completedAt"] is None and view["downloadUrl"] is None


async def test_a_completed_job_has_its_counts_and_timestamps(watched_job):
    api, users, posted_at, accepted, seen = watched_job
    job = seen[-1][1]["data"]
    assert (job["totalRecords"], job["processed"], job["created"], job["updated"], job["skipped"], job["failed"]) == (1200, 1200, 1138, 50, 0, 12)
    created, started, completed = parse(job["createdAt"]), parse(job["startedAt"]), parse(job["completedAt"])
    assert posted_at - timedelta(seconds=1) <= created <= started <= completed <= datetime.now(timezone.utc)
    assert parse(job["expiresAt"]) == created + timedelta(days=30)
    assert all(body["data"]["createdAt"] == job["createdAt"] for _, body in seen)


async def test_the_download_url_is_minted_per_request_valid_one_hour_and_serves_every_row_in_order(watched_job, bucket):
    api, users, _, accepted, _ = watched_job
    before = datetime.now(timezone.utc)
    first = ok_data(await api.job(accepted["jobId"]))
    await asyncio.sleep(1.1)  # presigned URLs carry a per-second timestamp: the next one must differ
    second = ok_data(await api.job(accepted["jobId"]))
    after = datetime.now(timezone.utc)
    assert first["downloadUrl"] != second["downloadUrl"]
    for view in (first, second):
        expires = parse(view["downloadUrlExpiresAt"])
        assert before + timedelta(seconds=3595) <= expires <= after + timedelta(seconds=3605)
        url = urlparse(view["downloadUrl"])
        query = parse_qs(url.query)
        assert query["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in query
        assert url.path.endswith(f"/results/{api.org}/{accepted['jobId']}.jsonl")
    rows_first, rows_second = await api.results(first), await api.results(second)
    assert rows_first == rows_second
    assert [r["index"] for r in rows_first] == list(range(len(users)))
    for row, user in zip(rows_first, users):
        assert row["userId"] == user["userId"]
        if row["status"] == "failed":
            assert set(row) == {"index", "userId", "email", "status", "error"} and row["error"]["code"] == "INVALID_EMAIL"
        else:
            assert set(row) == {"index", "userId", "email", "status"}
    assert [r["status"] for r in rows_first].count("updated") == 50


async def test_the_jobs_s3_objects_are_under_its_org(watched_job, s3, bucket):
    api, _, _, accepted, _ = watched_job
    assert await s3_keys(s3, bucket, f"requests/{api.org}/") == [f"requests/{api.org}/{accepted['jobId']}.json"]
    assert await s3_keys(s3, bucket, f"results/{api.org}/") == [f"results/{api.org}/{accepted['jobId']}.jsonl"]


async def test_jobs_accepted_at_once_answer_at_once(system):
    """GET right after the 202, for several jobs posted together: never 404 while the event travels."""
    apis = [Api(system, new_org()) for _ in range(4)]
    try:
        async def post_then_get(api: Api) -> tuple[str, httpx.Response]:
            accepted = ok_data(await api.import_users([{"userId": f"n{i}"} for i in range(100)]), 202)
            return accepted["jobId"], await api.job(accepted["jobId"])

        answers = await asyncio.gather(*(post_then_get(a) for a in apis))
        for job_id, response in answers:
            view = ok_data(response)
            assert view["jobId"] == job_id and view["status"] in ("pending", "processing", "completed")
            assert view["totalRecords"] == 100
        finished = await asyncio.gather(*(a.wait_for_job(job_id) for a, (job_id, _) in zip(apis, answers)))
        assert [(j["status"], j["created"]) for j in finished] == [("completed", 100)] * len(apis)
    finally:
        for api in apis:
            await api.close()


async def test_each_status_as_its_events_arrive_and_a_failed_job_says_why(system, importer_adapters, s3, bucket):
    """The job view driven by hand-published events (same key, so in order): pending (accepted,
    before any event), processing, progress, a late progress ignored, failed with its reason, and
    nothing after a final status."""
    api = Api(system, new_org())
    job_id = f"job_{uuid.uuid4()}"
    created_at = utc_now()
    job = dict(jobId=job_id, orgId=api.org, totalRecords=100, createdAt=created_at)
    publish = importer_adapters.events.publish
    try:
        # What ingest does before answering 202: the request object with its metadata.
        await s3.put_object(Bucket=bucket, Key=f"requests/{api.org}/{job_id}.json", Body=b'{"users": []}',
                            Metadata={"total-records": "100", "created-at": created_at})
        view = ok_data(await api.job(job_id))
        assert (view["status"], view["processed"], view["startedAt"], view["createdAt"]) == ("pending", 0, None, created_at)

        async def view_when(predicate) -> dict[str, Any]:
            async def check():
                data = ok_data(await api.job(job_id))
                return data if predicate(data) else None
            return await poll(check, timeout=20, interval=0.05, what="job view")

        started_at = utc_now()
        await publish(ImportStarted(**job, startedAt=started_at))
        view = await view_when(lambda v: v["status"] == "processing")
        assert (view["startedAt"], view["processed"], view["completedAt"]) == (started_at, 0, None)

        await publish(ImportProgress(**job, startedAt=started_at, counts=Counts(processed=40, created=30, updated=5, skipped=3, failed=2)))
        view = await view_when(lambda v: v["processed"] == 40)
        assert (view["created"], view["updated"], view["skipped"], view["failed"]) == (30, 5, 3, 2)

        await publish(ImportProgress(**job, startedAt=started_at, counts=Counts(processed=20, created=20)))  # late
        failed_at = utc_now()
        await publish(ImportFailed(**job, startedAt=started_at, failedAt=failed_at, counts=Counts(processed=40, created=30, updated=5, skipped=3, failed=2),
                                   error=ErrorInfo(code="SERVER_UNAVAILABLE", message="DynamoDB (user store) is not reachable")))
        view = await view_when(lambda v: v["status"] == "failed")
        assert view["processed"] == 40 and view["completedAt"] == failed_at and view["downloadUrl"] is None
        assert view["error"]["code"] == "SERVER_UNAVAILABLE" and "DynamoDB" in view["error"]["message"]

        # A final status is final: a later completed event changes nothing.
        await publish(ImportCompleted(**job, startedAt=started_at, completedAt=utc_now(), counts=Counts(processed=100, created=100),
                                      resultsLocation=ObjectLocation(bucket=bucket, key=f"results/{api.org}/{job_id}.jsonl")))
        marker = dict(job, jobId=f"job_{uuid.uuid4()}")
        # A second job's event on the same partition (same key) shows the first was handled.
        await importer_adapters.events._broker.publish(
            ImportStarted(**marker, startedAt=utc_now()).model_dump_json().encode(), topic="import.started", key=job_id.encode()
        )
        await poll(lambda: _status(api, marker["jobId"]), timeout=20, interval=0.05, what="marker job projected")
        view = ok_data(await api.job(job_id))
        assert (view["status"], view["processed"]) == ("failed", 40)
    finally:
        await api.close()


async def _status(api: Api, job_id: str) -> str | None:
    response = await api.job(job_id)
    return response.json()["data"]["status"] if response.status_code == 200 else None


async def test_a_job_whose_users_cannot_be_read_fails_with_invalid_import_request(system, importer_adapters, bucket):
    api = Api(system, new_org())
    try:
        event = ImportRequested(jobId=f"job_{uuid.uuid4()}", orgId=api.org, totalRecords=150,
                                usersLocation=ObjectLocation(bucket=bucket, key=f"requests/{api.org}/missing.json"))
        await importer_adapters.events.publish(event)
        job = await api.wait_for_job(event.jobId, via_ingest=False)
        assert job["status"] == "failed" and job["error"]["code"] == "INVALID_IMPORT_REQUEST" and job["error"]["message"]
        assert (job["processed"], job["downloadUrl"], job["totalRecords"]) == (0, None, 150)
    finally:
        await api.close()


@pytest.mark.parametrize("job_id", [
    "job_" + str(uuid.UUID(int=0)),  # well-formed, unknown
    "job_00000000-0000-4000-8000-00000000000",  # one digit short
    "job_" + str(uuid.uuid4()).upper(),
    "abc",
    "job_",
    str(uuid.uuid4()),
    "job_" + str(uuid.uuid4()) + "x",
    "job_' or '1'='1",
    "job_{\"$ne\": null}",
])
async def test_an_unknown_or_malformed_job_id_is_404_job_not_found(api: Api, job_id):
    assert_error(await api.job(job_id), 404, "JOB_NOT_FOUND")


async def test_an_expired_job_is_404_even_before_mongodb_removes_it(api: Api, mongo_jobs):
    now = datetime.now(timezone.utc)
    ids = {}
    for age in (31, 29):
        job_id = ids[age] = f"job_{uuid.uuid4()}"
        created = now - timedelta(days=age)
        await mongo_jobs.insert_one({
            "_id": job_id, "rev": 1, "jobId": job_id, "orgId": api.org, "status": "failed", "totalRecords": 1,
            "counts": {"processed": 0, "created": 0, "updated": 0, "skipped": 0, "failed": 0},
            "error": {"code": "INTERNAL_ERROR", "message": "x"},
            "createdAt": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "expiresAt": created + timedelta(days=30),
        })
    assert_error(await api.job(ids[31]), 404, "JOB_NOT_FOUND")
    assert ok_data(await api.job(ids[29]))["status"] == "failed"  # the same, 2 days younger, is there


async def test_jobs_expire_after_30_days_by_a_ttl_index(watched_job, mongo_jobs):
    api, _, _, accepted, seen = watched_job
    indexes = {i["name"]: i async for i in await mongo_jobs.list_indexes()}
    ttl = [i for i in indexes.values() if "expireAfterSeconds" in i]
    assert [(dict(i["key"]), i["expireAfterSeconds"]) for i in ttl] == [({"expiresAt": 1}, 0)]
    stored = await mongo_jobs.find_one({"_id": accepted["jobId"]})
    created = parse(seen[-1][1]["data"]["createdAt"])
    assert stored["expiresAt"].replace(tzinfo=timezone.utc) == created + timedelta(days=30)


async def _lifecycle(s3, bucket) -> list[dict[str, Any]]:
    return (await s3.get_bucket_lifecycle_configuration(Bucket=bucket))["Rules"]


async def test_the_bucket_expires_requests_and_results_after_30_days(s3, bucket):
    rules = await _lifecycle(s3, bucket)
    expiring = {
        (r.get("Filter", {}).get("Prefix", r.get("Prefix"))): r["Expiration"].get("Days")
        for r in rules if r["Status"] == "Enabled" and "Expiration" in r
    }
    assert expiring.get("requests/") == 30 and expiring.get("results/") == 30


async def test_the_bucket_lifecycle_rule_ids_are_unique(s3, bucket):
    ids = [r["ID"] for r in await _lifecycle(s3, bucket)]
    assert len(ids) == len(set(ids)), ids
