"""Job events → the job view; GET /v1/bulk/jobs/{jobId} → the job's status and result link."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from shared.adapters.object_store import request_key
from shared.api import ApiError, JobStatusBody
from shared.auth import Caller
from shared.domain.job_view import JobEventIn, JobView
from shared.events import JOB_ID_PATTERN
from shared.logging import job_logger

from .adapters import JobsAdapters

JOB_ID = re.compile(JOB_ID_PATTERN)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def on_job_event(event: JobEventIn, adapters: JobsAdapters) -> JobView | None:
    updated = await adapters.views.apply(event)
    job_logger(event.jobId, event.orgId).debug("job event", eventType=event.eventType, changed=updated is not None)
    return updated


async def job_status(job_id: str, caller: Caller, adapters: JobsAdapters, url_ttl_seconds: int) -> JobStatusBody:
    not_found = ApiError(404, "JOB_NOT_FOUND", f"job {job_id} not found")
    if not JOB_ID.match(job_id):
        raise not_found
    view = await adapters.views.get(job_id)
    if view is None or view.orgId != caller.org_id:
        # Accepted by ingest, but its first event has not been projected yet: pending, never 404.
        view = await _accepted_job(job_id, caller.org_id, adapters) if view is None else None
    now = datetime.now(timezone.utc)
    if view is None or view.expires_at <= now:
        raise not_found
    download_url = expires = None
    if view.status == "completed" and view.resultsLocation is not None:
        download_url = await adapters.objects.presigned_get(view.resultsLocation, url_ttl_seconds)
        expires = _iso(now + timedelta(seconds=url_ttl_seconds))
    counts = view.counts
    return JobStatusBody(
        jobId=view.jobId, status=view.status, totalRecords=view.totalRecords, processed=counts.processed,
        created=counts.created, updated=counts.updated, skipped=counts.skipped, failed=counts.failed,
        createdAt=view.createdAt, startedAt=view.startedAt, completedAt=view.completedAt, expiresAt=_iso(view.expires_at),
        downloadUrl=download_url, downloadUrlExpiresAt=expires,
        error=view.error.model_dump() if view.error else None,
    )


async def _accepted_job(job_id: str, org_id: str, adapters: JobsAdapters) -> JobView | None:
    meta = await adapters.objects.metadata(request_key(org_id, job_id))
    if meta is None:
        return None
    return JobView(jobId=job_id, orgId=org_id, status="pending", totalRecords=int(meta["total-records"]), createdAt=meta["created-at"])
