"""POST /v1/bulk/users: fewer than 100 users are imported now; more become a background job."""
from __future__ import annotations

import contextlib
import uuid

import structlog

from shared.adapters.object_store import request_key
from shared.api import SYNC_LIMIT, AsyncImportAccepted, ImportRequest, ResultRow, SyncImportResult
from shared.auth import Caller
from shared.events import ImportRequested, utc_now
from shared.importing import ImportRun, import_users
from shared.logging import job_logger

from .adapters import IngestAdapters
from .settings import IngestSettings

log = structlog.get_logger()


async def import_now(request: ImportRequest, caller: Caller, adapters: IngestAdapters) -> SyncImportResult:
    run = ImportRun(caller.org_id, "req_" + str(uuid.uuid4()), request.options)
    job_logger(run.job_ref, caller.org_id).info("sync import", users=len(request.users))
    result = await import_users(run, request.users, adapters.users, adapters.events)
    counts = result.counts
    return SyncImportResult(
        total=counts.processed, created=counts.created, updated=counts.updated, skipped=counts.skipped,
        failed=counts.failed, results=[ResultRow.model_validate(o.as_result_row()) for o in result.outcomes],
    )


async def start_job(
    request: ImportRequest, body: bytes, caller: Caller, adapters: IngestAdapters, settings: IngestSettings
) -> AsyncImportAccepted:
    job_id = "job_" + str(uuid.uuid4())
    created_at = utc_now()
    logger = job_logger(job_id, caller.org_id)
    # The body was validated as a whole; the importer reads its `users` as sent, byte for byte.
    location = await adapters.objects.put(
        request_key(caller.org_id, job_id), body, "application/json",
        metadata={"total-records": str(len(request.users)), "created-at": created_at},
    )
    event = ImportRequested(
        jobId=job_id, orgId=caller.org_id, requestedBy=caller.subject, options=request.options,
        totalRecords=len(request.users), createdAt=created_at, usersLocation=location,
    )
    try:
        await adapters.events.publish(event)
    except BaseException:
        # Not accepted: remove the users again, or the jobs service would show the job as pending.
        with contextlib.suppress(Exception):
            await adapters.objects.delete(location)
        raise
    logger.info("job accepted", totalRecords=event.totalRecords)
    return AsyncImportAccepted(
        jobId=job_id, totalRecords=event.totalRecords,
        statusUrl=f"{settings.jobs_public_url.rstrip('/')}/v1/bulk/jobs/{job_id}",
    )


def is_sync(request: ImportRequest) -> bool:
    return len(request.users) < SYNC_LIMIT
