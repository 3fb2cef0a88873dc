"""The job view: what the jobs service knows of a job, projected from its events.

The projection only moves forward: pending → processing → completed | failed, and within
processing only to a larger `processed`. Repeated, late or out-of-order events change nothing.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ..events import Counts, ErrorInfo, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, ObjectLocation

JOB_RETENTION = timedelta(days=30)
JobStatus = Literal["pending", "processing", "completed", "failed"]
_RANK: dict[str, int] = {"pending": 0, "processing": 1, "completed": 2, "failed": 2}


class JobView(BaseModel):
    model_config = ConfigDict(frozen=True)

    jobId: str
    orgId: str
    status: JobStatus
    totalRecords: int
    counts: Counts = Counts()
    createdAt: str
    startedAt: str | None = None
    completedAt: str | None = None
    resultsLocation: ObjectLocation | None = None
    error: ErrorInfo | None = None

    @property
    def expires_at(self) -> datetime:
        return parse_time(self.createdAt) + JOB_RETENTION

    @property
    def is_final(self) -> bool:
        return _RANK[self.status] == 2


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


JobEventIn = ImportRequested | ImportStarted | ImportProgress | ImportCompleted | ImportFailed


def view_of(event: JobEventIn) -> JobView:
    """The view that this one event describes on its own."""
    common = dict(jobId=event.jobId, orgId=event.orgId, totalRecords=event.totalRecords, createdAt=event.createdAt)
    match event:
        case ImportRequested():
            return JobView(status="pending", **common)
        case ImportStarted():
            return JobView(status="processing", startedAt=event.startedAt, **common)
        case ImportProgress():
            return JobView(status="processing", startedAt=event.startedAt, counts=event.counts, **common)
        case ImportCompleted():
            return JobView(
                status="completed", startedAt=event.startedAt, completedAt=event.completedAt,
                counts=event.counts, resultsLocation=event.resultsLocation, **common,
            )
        case ImportFailed():
            return JobView(
                status="failed", startedAt=event.startedAt, completedAt=event.failedAt,
                counts=event.counts, error=event.error, **common,
            )
    raise TypeError(f"not a job event: {type(event).__name__}")


def project(current: JobView | None, event: JobEventIn) -> JobView | None:
    """The new view after `event`, or None when the event changes nothing."""
    incoming = view_of(event)
    if current is None:
        return incoming
    if current.orgId != incoming.orgId:
        return None  # a job belongs to the org that created it: another org's event cannot touch it
    if current.is_final or _RANK[incoming.status] < _RANK[current.status]:
        return None
    if incoming.status == current.status and incoming.counts.processed <= current.counts.processed:
        return None
    return incoming.model_copy(
        update={"createdAt": current.createdAt, "startedAt": current.startedAt or incoming.startedAt}
    )
