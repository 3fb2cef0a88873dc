"""Kafka is at-least-once: every consumer must be safe to run twice on the same message."""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.importer.handlers import handle_import_requested
from shared.domain.model import ImportOptions
from shared.events import ImportRequested, Topics

from ..conftest import Api, new_org, org_items, org_users


def users_for(n: int, prefix: str) -> list[dict]:
    users = [{"userId": f"{prefix}{i}", "email": f"{prefix}{i}@example.com", "customFields": {"n": i}} for i in range(n)]
    users += [{"email": f"{prefix}-only-{i}@example.com"} for i in range(20)]
    users += [{"userId": f"{prefix}3", "metadata": {"second": "row"}}, {"userId": "", "email": "x"}]
    return users


async def welcome_events(endpoints, org: str, expect_at_least: int) -> list[dict]:
    consumer = AIOKafkaConsumer(
        Topics.WELCOME_EMAIL_REQUESTED, bootstrap_servers=endpoints.kafka_bootstrap,
        group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest",
    )
    await consumer.start()
    found: list[dict] = []
    try:
        idle_polls = 0
        while idle_polls < 4:  # read until the topic has been quiet for a while
            batch = await consumer.getmany(timeout_ms=500)
            messages = [json.loads(m.value) for part in batch.values() for m in part]
            found += [m for m in messages if m["orgId"] == org]
            idle_polls = 0 if messages or len(found) < expect_at_least else idle_polls + 1
    finally:
        await consumer.stop()
    return found


def request(org: str, users: list, **options) -> ImportRequested:
    return ImportRequested(
        jobId=f"job_{uuid.uuid4()}", orgId=org, totalRecords=len(users), users=users, options=ImportOptions(**options)
    )


async def test_the_importer_handler_run_twice_gives_the_same_users_counts_and_one_welcome_email_each(
    importer_adapters, user_store, batch_writes, endpoints
):
    org = new_org()
    event = request(org, users_for(120, "tw"), sendWelcomeEmail=True)
    first = await handle_import_requested(event, importer_adapters, chunk_rows=50)
    items_after_first = await org_items(user_store, org)
    second = await handle_import_requested(event, importer_adapters, chunk_rows=50)
    assert first.eventType == second.eventType == "import.completed"
    assert first.counts == second.counts
    assert (first.counts.created, first.counts.updated, first.counts.failed) == (140, 1, 1)
    assert await org_items(user_store, org) == items_after_first
    batch_writes.assert_within_dynamodb_limits()
    welcomes = await welcome_events(endpoints, org, expect_at_least=140)
    assert len(welcomes) == 140 and len({w["userId"] for w in welcomes}) == 140


async def test_an_interrupted_import_resumes_without_counting_twice(importer_adapters, user_store, endpoints):
    """A crash mid-job (here: cancelled after some chunks were written) and the message again."""
    org = new_org()
    users = users_for(400, "cr")
    event = request(org, users, sendWelcomeEmail=True)
    crashing = asyncio.ensure_future(handle_import_requested(event, importer_adapters, chunk_rows=25))
    for _ in range(400):
        await asyncio.sleep(0.01)
        if len(await org_items(user_store, org)) > 100:
            break
    crashing.cancel()
    await asyncio.gather(crashing, return_exceptions=True)
    partial = len(await org_items(user_store, org))
    assert 0 < partial, "the interruption happened before anything was written"

    resumed = await handle_import_requested(event, importer_adapters, chunk_rows=25)
    clean_org = new_org()
    clean = await handle_import_requested(request(clean_org, users, sendWelcomeEmail=True), importer_adapters, chunk_rows=25)
    assert resumed.counts == clean.counts
    assert (resumed.counts.created, resumed.counts.updated, resumed.counts.failed) == (420, 1, 1)
    # Same users, same data (ids of email-only users are derived from the job, so compare the rest).
    async def shape(org):
        users = sorted((u.email or "", json.dumps(u.custom_fields, sort_keys=True)) for u in (await org_users(user_store, org)).values())
        claims = sorted(i["key"]["S"] for i in await org_items(user_store, org) if i["key"]["S"].startswith("email#"))
        return users, claims
    resumed_shape = await shape(org)
    assert len(resumed_shape[0]) == resumed.counts.created and resumed_shape == await shape(clean_org)
    welcomes = await welcome_events(endpoints, org, expect_at_least=420)
    assert len({w["userId"] for w in welcomes}) == 420
    # At most the chunk in flight at the crash may be asked twice (same eventId, for consumers to drop).
    assert len(welcomes) - 420 <= 25


async def test_the_same_import_requested_twice_on_kafka_completes_once(api: Api, endpoints):
    users = users_for(120, "kf")
    event = request(api.org, users)
    producer = AIOKafkaProducer(bootstrap_servers=endpoints.kafka_bootstrap)
    await producer.start()
    try:
        for _ in range(2):
            await producer.send_and_wait(Topics.IMPORT_REQUESTED, event.model_dump_json().encode(), key=event.jobId.encode())
    finally:
        await producer.stop()
    job = await api.wait_for_job(event.jobId, via_ingest=False)
    await asyncio.sleep(2)  # let the second delivery finish and its events be projected
    again = (await api.job(event.jobId)).json()["data"]
    assert job["status"] == again["status"] == "completed"
    for name in ("processed", "created", "updated", "skipped", "failed", "completedAt"):
        assert job[name] == again[name], name
    assert (again["created"], again["updated"], again["failed"]) == (140, 1, 1)


async def test_the_job_view_ignores_repeated_and_late_events(importer_adapters, settings):
    from pymongo import AsyncMongoClient

    from services.jobs.views import JobViews
    from shared.events import Counts, ImportCompleted, ImportProgress, ImportStarted, ObjectLocation

    client = AsyncMongoClient(settings.mongo_uri)
    views = JobViews(client[settings.mongo_db]["jobs"])
    job = dict(jobId=f"job_{uuid.uuid4()}", orgId="o", totalRecords=10, createdAt="2026-12-01T00:00:00.000Z")
    t = "2026-12-01T00:00:01.000Z"
    done = ImportCompleted(**job, startedAt=t, completedAt=t, counts=Counts(processed=10, created=10),
                           resultsLocation=ObjectLocation(bucket="b", key="k"))
    progress = ImportProgress(**job, startedAt=t, counts=Counts(processed=5, created=5))
    try:
        # Two consumers applying events of one job at once: compare-and-set keeps the furthest.
        await asyncio.gather(*(views.apply(e) for e in [progress, done, progress, ImportStarted(**job, startedAt=t)] * 5))
        view = await views.get(job["jobId"])
        assert view.status == "completed" and view.counts.processed == 10
        assert await views.apply(progress) is None and await views.apply(done) is None
    finally:
        await client.close()


class Crash(BaseException):
    """A crash of the importer process: not an error the handler reports, nothing after it runs."""


async def test_a_redelivery_replays_finished_chunks_whatever_later_rows_changed(importer_adapters, user_store, monkeypatch):
    """Row 0 fails IDENTITY_CONFLICT (a holds the email), and row 30 moves a off that email. The
    importer crashes after three chunks of 25. Applied again, row 0 would now succeed; the
    re-delivery must report what the first delivery decided, and end as a clean run does."""
    import services.importer.handlers as handlers
    from shared.adapters.object_store import JobChunkLog, chunk_log_prefix

    def rows(org_prefix: str) -> list[dict]:
        users = [{"userId": "b", "email": f"shared@{org_prefix}.io"}]
        users += [{"userId": f"f{i}", "email": f"f{i}@{org_prefix}.io"} for i in range(1, 30)]
        users += [{"userId": "a", "email": f"a.new@{org_prefix}.io"}]
        return users + [{"userId": f"g{i}", "email": f"g{i}@{org_prefix}.io"} for i in range(31, 120)]

    async def seeded() -> tuple[str, ImportRequested]:
        org = new_org()
        await handle_import_requested(request(org, [{"userId": "a", "email": "shared@rd.io"}]), importer_adapters, chunk_rows=25)
        return org, request(org, rows("rd"))

    class CrashingLog(JobChunkLog):
        async def record(self, span, outcomes):
            await super().record(span, outcomes)
            if span.start == 50:
                raise Crash

    org, event = await seeded()
    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(handlers, "JobChunkLog", CrashingLog)
        await handle_import_requested(event, importer_adapters, chunk_rows=25)
    assert len(await importer_adapters.objects.keys(chunk_log_prefix(org, event.jobId))) == 3
    resumed = await handle_import_requested(event, importer_adapters, chunk_rows=25)

    clean_org, clean_event = await seeded()
    clean = await handle_import_requested(clean_event, importer_adapters, chunk_rows=25)
    results = [json.loads(line) for line in (await importer_adapters.objects.get_bytes(resumed.resultsLocation)).decode().splitlines()]
    assert (results[0]["status"], results[0]["error"]["code"]) == ("failed", "IDENTITY_CONFLICT")
    assert results[30]["status"] == "updated"
    assert resumed.counts == clean.counts and (resumed.counts.created, resumed.counts.updated, resumed.counts.failed) == (118, 1, 1)
    assert "b" not in await org_users(user_store, org)
    # Once the results file is written, the chunk outcomes are gone.
    assert await importer_adapters.objects.keys(chunk_log_prefix(org, event.jobId)) == []


async def test_a_redelivery_claims_the_emails_of_new_users_a_crash_left_unclaimed(importer_adapters, user_store, monkeypatch):
    """New users and their email claims go to the store side by side: a crash can land the users
    and not the claims. The re-delivery recognises those rows (reported as first decided) and
    writes the missing claims, so the email stays unique: a later import cannot give it to another."""
    from shared.domain.model import PutEmailClaim

    org = new_org()
    users = [{"userId": f"c{i}", "email": f"c{i}@crash.io"} for i in range(30)]
    event = request(org, users)
    write = user_store.write

    async def crash_after_the_users(org_id, writes):
        await write(org_id, [w for w in writes if not isinstance(w, PutEmailClaim)])
        raise Crash

    with monkeypatch.context() as patched, pytest.raises(Crash):
        patched.setattr(user_store, "write", crash_after_the_users)
        await handle_import_requested(event, importer_adapters, chunk_rows=250)
    assert (await user_store.load(org, [], ["c0@crash.io"]))[1] == {"c0@crash.io": None}  # the state the crash left

    resumed = await handle_import_requested(event, importer_adapters, chunk_rows=250)
    assert (resumed.counts.created, resumed.counts.failed) == (30, 0)
    claims = (await user_store.load(org, [], [f"c{i}@crash.io" for i in range(30)]))[1]
    assert claims == {f"c{i}@crash.io": f"c{i}" for i in range(30)}
    taken = await handle_import_requested(request(org, [{"userId": "other", "email": "C0@crash.io"}]), importer_adapters, chunk_rows=250)
    assert taken.counts.failed == 1
