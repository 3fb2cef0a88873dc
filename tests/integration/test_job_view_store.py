"""The job view in MongoDB: TTL index, expiry, and org isolation through the jobs API."""
from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

from pymongo import AsyncMongoClient

from ..conftest import Api


async def test_the_job_view_has_a_ttl_index_that_deletes_expired_jobs(system, settings, api: Api):
    client = AsyncMongoClient(settings.mongo_uri)
    jobs = client[settings.mongo_db]["jobs"]
    try:
        indexes = {i["name"]: i async for i in await jobs.list_indexes()}
        assert indexes["jobs_ttl"]["key"] == {"expiresAt": 1} and indexes["jobs_ttl"]["expireAfterSeconds"] == 0

        job_id = f"job_{uuid.uuid4()}"
        created = datetime.now(timezone.utc) - timedelta(days=31)
        await jobs.insert_one({
            "_id": job_id, "rev": 1, "jobId": job_id, "orgId": api.org, "status": "completed", "totalRecords": 1,
            "counts": {"processed": 1, "created": 1, "updated": 0, "skipped": 0, "failed": 0},
            "createdAt": created.isoformat().replace("+00:00", "Z"), "expiresAt": created + timedelta(days=30),
        })
        # Expired jobs answer 404 at once, whether or not MongoDB's TTL monitor has run yet.
        response = await api.job(job_id)
        assert response.status_code == 404 and response.json()["error"]["code"] == "JOB_NOT_FOUND"
        for _ in range(150):  # the embedded mongod runs its TTL monitor every second
            if await jobs.find_one({"_id": job_id}) is None:
                break
            await asyncio.sleep(0.2)
        assert await jobs.find_one({"_id": job_id}) is None
    finally:
        await client.close()


async def test_another_orgs_job_is_not_found(api: Api):
    response = await api.import_users([{"userId": f"u{i}"} for i in range(100)])
    job_id = response.json()["data"]["jobId"]
    outsider = Api(api.dev, "org-other-" + uuid.uuid4().hex[:6])
    try:
        for _ in range(2):  # while pending (maybe not projected yet) and once completed
            answer = await outsider.job(job_id)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "JOB_NOT_FOUND"
            await api.wait_for_job(job_id)
    finally:
        await outsider.close()
