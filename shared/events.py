"""The events bulkops speaks on Kafka: a public API, version 1.

Every event is keyed by jobId (welcome emails by userId) and carries `eventType` and
`schemaVersion`. Fields are only ever added within a version; a breaking change gets a new
version and new topics. Consumers must ignore fields they do not know.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from .domain.model import ImportOptions
from .domain.validation import ORG_ID_PATTERN as ORG_ID

SCHEMA_VERSION = 1
JOB_ID_PATTERN = r"^job_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
# ISO-8601 UTC with milliseconds, as every bulkops timestamp.
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")]
JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]


def _org_id(value: str) -> str:
    if not ORG_ID.match(value):
        raise ValueError("orgId must be 1-128 letters, digits, '.', '_', ':' or '-' (no '..'), starting with a letter or digit")
    return value


OrgId = Annotated[str, AfterValidator(_org_id)]


class Topics:
    IMPORT_REQUESTED = "import.requested"
    IMPORT_STARTED = "import.started"
    IMPORT_PROGRESS = "import.progress"
    IMPORT_COMPLETED = "import.completed"
    IMPORT_FAILED = "import.failed"
    WELCOME_EMAIL_REQUESTED = "user.welcome_email.requested"

    PROGRESS = (IMPORT_STARTED, IMPORT_PROGRESS, IMPORT_COMPLETED, IMPORT_FAILED)
    ALL = (IMPORT_REQUESTED, *PROGRESS, WELCOME_EMAIL_REQUESTED)


def utc_now() -> str:
    """ISO-8601 UTC with milliseconds, the contract's timestamp format."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_event_id() -> str:
    return "evt_" + str(uuid.uuid4())


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    schemaVersion: Literal[1] = SCHEMA_VERSION
    eventId: str = Field(default_factory=new_event_id)
    occurredAt: str = Field(default_factory=utc_now)


class ObjectLocation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    bucket: str
    key: str


class ImportRequested(Event):
    """Ask for an import. Users come either inline (`users`) or as a JSON document
    `{"users": [...]}` in S3 (`usersLocation`); ingest always uses S3."""

    eventType: Literal["import.requested"] = "import.requested"
    jobId: JobId
    orgId: OrgId
    requestedBy: str = ""
    options: ImportOptions = ImportOptions()
    totalRecords: int = Field(ge=1, le=10_000)
    createdAt: Timestamp = Field(default_factory=utc_now)
    usersLocation: ObjectLocation | None = None
    users: list[Any] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> "ImportRequested":
        if (self.usersLocation is None) == (self.users is None):
            raise ValueError("give exactly one of usersLocation and users")
        if self.users is not None and len(self.users) != self.totalRecords:
            raise ValueError("totalRecords must equal the number of users")
        return self


class Counts(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    processed: int = 0
    created: int = 0
    updated: int = 0
    skipped: int = 0
    failed: int = 0


class JobEvent(Event):
    """Common to every progress event: enough to build the job view from any one of them."""

    jobId: JobId
    orgId: OrgId
    totalRecords: int
    createdAt: Timestamp


class ImportStarted(JobEvent):
    eventType: Literal["import.started"] = "import.started"
    startedAt: Timestamp


class ImportProgress(JobEvent):
    """Cumulative counts so far (never deltas), so a repeated or late event cannot double-count."""

    eventType: Literal["import.progress"] = "import.progress"
    startedAt: Timestamp
    counts: Counts


class ImportCompleted(JobEvent):
    eventType: Literal["import.completed"] = "import.completed"
    startedAt: Timestamp
    completedAt: Timestamp
    counts: Counts
    resultsLocation: ObjectLocation


class ErrorInfo(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    message: str


class ImportFailed(JobEvent):
    eventType: Literal["import.failed"] = "import.failed"
    startedAt: Timestamp | None = None
    failedAt: Timestamp
    counts: Counts = Counts()
    error: ErrorInfo


ProgressEvent = ImportStarted | ImportProgress | ImportCompleted | ImportFailed


class WelcomeEmailRequested(Event):
    """One per created user with an email. `eventId` is derived from org, user and import, so a
    consumer can drop the rare repeat that a crash between publish and bookkeeping can cause."""

    eventType: Literal["user.welcome_email.requested"] = "user.welcome_email.requested"
    orgId: str
    userId: str
    email: str
    jobId: str

    @classmethod
    def for_user(cls, org_id: str, user_id: str, email: str, job_ref: str) -> "WelcomeEmailRequested":
        event_id = "evt_" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"welcome/{org_id}/{user_id}/{job_ref}"))
        return cls(eventId=event_id, orgId=org_id, userId=user_id, email=email, jobId=job_ref)
