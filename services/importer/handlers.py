"""import.requested → the users written, progress events, a results file, import.completed.

Safe to run twice on the same message: a job whose results file exists is only announced again;
an interrupted job replays the outcomes of the chunks it had finished (JobChunkLog) and re-runs the
rest, recognising the rows of the chunks in flight that it had already written (see ImportPlan).
"""
from __future__ import annotations

import json

from pydantic import ValidationError

from shared.adapters.aws import ServerUnavailable
from shared.adapters.object_store import JobChunkLog, request_prefix, results_key
from shared.events import (
    Counts, ErrorInfo, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, ObjectLocation, utc_now,
)
from shared.importing import ImportRun, import_users
from shared.logging import job_logger

from .adapters import ImporterAdapters


async def handle_import_requested(event: ImportRequested, adapters: ImporterAdapters, chunk_rows: int) -> ImportCompleted | ImportFailed:
    log = job_logger(event.jobId, event.orgId)
    job = dict(jobId=event.jobId, orgId=event.orgId, totalRecords=event.totalRecords, createdAt=event.createdAt)
    key = results_key(event.orgId, event.jobId)
    done = await adapters.objects.metadata(key)
    if done is not None:
        log.info("job already completed; announcing it again")
        final: ImportCompleted | ImportFailed = ImportCompleted(
            **job, startedAt=done["started-at"], completedAt=done["completed-at"],
            counts=Counts.model_validate_json(done["counts"]), resultsLocation=ObjectLocation(bucket=adapters.objects.bucket, key=key),
        )
        await adapters.events.publish(final)
        return final

    started_at = utc_now()
    await adapters.events.publish(ImportStarted(**job, startedAt=started_at))
    log.info("job started")
    try:
        users = await _users_of(event, adapters)

        async def progress(counts: Counts) -> None:
            await adapters.events.publish(ImportProgress(**job, startedAt=started_at, counts=counts))

        run = ImportRun(event.orgId, event.jobId, event.options)
        chunk_log = JobChunkLog(adapters.objects, event.orgId, event.jobId)
        result = await import_users(run, users, adapters.users, adapters.events, chunk_rows, progress, chunk_log)
        counts = result.counts
        completed_at = utc_now()
        lines = "".join(json.dumps(o.as_result_row(), ensure_ascii=False) + "\n" for o in result.outcomes)
        location = await adapters.objects.put(
            key, lines.encode(), "application/x-ndjson",
            metadata={"started-at": started_at, "completed-at": completed_at, "counts": counts.model_dump_json()},
        )
        final = ImportCompleted(**job, startedAt=started_at, completedAt=completed_at, counts=counts, resultsLocation=location)
        log.info("job completed", **counts.model_dump())
        try:
            await chunk_log.clear()  # the results file says it all now
        except Exception as exc:  # harmless: the bucket's lifecycle rule removes them within 30 days
            log.warning("chunk outcomes not removed", error=str(exc))
    except Exception as exc:  # a job must end, never hang in `processing`: say why it failed
        code = {_UnusableRequest: "INVALID_IMPORT_REQUEST", ServerUnavailable: "SERVER_UNAVAILABLE"}.get(type(exc), "INTERNAL_ERROR")
        log.exception("job failed", code=code)
        message = str(exc) if code != "INTERNAL_ERROR" else f"{type(exc).__name__}: {exc}"
        final = ImportFailed(**job, startedAt=started_at, failedAt=utc_now(), error=ErrorInfo(code=code, message=message))
    await adapters.events.publish(final)
    return final


class _UnusableRequest(Exception):
    """The users of the request cannot be read: retrying will not help."""


async def _users_of(event: ImportRequested, adapters: ImporterAdapters) -> list:
    if event.users is not None:
        return event.users
    own_prefix = request_prefix(event.orgId)
    if event.usersLocation.bucket != adapters.objects.bucket or not event.usersLocation.key.startswith(own_prefix):
        # Another service may publish imports, but only of users stored under the org's own prefix.
        raise _UnusableRequest(f"usersLocation must be in bucket {adapters.objects.bucket} under {own_prefix}")
    try:
        document = await adapters.objects.get_json(event.usersLocation)
    except ServerUnavailable:
        raise
    except Exception as exc:  # missing object, not JSON: the request itself is unusable
        raise _UnusableRequest(f"cannot read users from s3://{event.usersLocation.bucket}/{event.usersLocation.key}: {exc}") from exc
    users = document.get("users") if isinstance(document, dict) else None
    if not isinstance(users, list) or len(users) != event.totalRecords:
        raise _UnusableRequest(f"the users document must hold a users array of totalRecords ({event.totalRecords}) entries")
    return users


def failed_for_invalid_event(raw: bytes, error: ValidationError) -> ImportFailed | None:
    """An import.requested that does not match the schema still fails visibly when it names its
    job and org validly; otherwise there is no job to report on (the caller logs it)."""
    try:
        document = json.loads(raw)
        now = utc_now()
        return ImportFailed(
            jobId=document["jobId"], orgId=document["orgId"], totalRecords=0, createdAt=now, failedAt=now,
            error=ErrorInfo(code="INVALID_IMPORT_REQUEST", message=f"import.requested does not match schema v1: {error.errors()[0]['msg']}"),
        )
    except (ValueError, KeyError, TypeError, ValidationError):
        return None
