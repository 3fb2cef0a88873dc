"""jobs: projects job events into MongoDB and serves job status. `uvicorn services.jobs.app:app`."""
from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, AsyncIterator

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import Field, TypeAdapter, ValidationError

import structlog

from shared.adapters.aws import ServerUnavailable
from shared.api import Envelope, JobStatusBody
from shared.events import ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, Topics
from shared.http import COMMON_ERRORS, caller_of, error_responses, install_error_envelopes, ok, token_verifier
from shared.logging import configure_logging, library_logger

from . import handlers
from .adapters import JobsAdapters, open_adapters
from .settings import JobsSettings

settings = JobsSettings()
configure_logging("jobs", settings.log_level)
log = structlog.get_logger()
verifier = token_verifier(settings)
broker = KafkaBroker(settings.kafka_bootstrap, client_id="bulkops-jobs", logger=library_logger("bulkops.broker"))
job_event = TypeAdapter(
    Annotated[ImportRequested | ImportStarted | ImportProgress | ImportCompleted | ImportFailed, Field(discriminator="eventType")]
)
adapters: JobsAdapters


@broker.subscriber(
    Topics.IMPORT_REQUESTED, *Topics.PROGRESS, group_id=settings.group_id, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK
)
async def on_job_event(message: KafkaMessage) -> None:
    body = message.body  # raw bytes: the schema is checked here so a bad event can be reported
    try:
        event = job_event.validate_json(body)
    except ValidationError as exc:
        log.error("job event does not match schema v1; skipped", error=str(exc))
        return
    # The view must not miss an event: while MongoDB is away, wait for it (the partition waits too).
    for attempt in itertools.count():
        try:
            await handlers.on_job_event(event, adapters)
            return
        except ServerUnavailable as exc:
            log.warning("job view unavailable; retrying", error=str(exc), jobId=event.jobId)
            await asyncio.sleep(min(30.0, 0.5 * 2**attempt))


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global adapters
    async with AsyncExitStack() as stack:
        adapters = await open_adapters(settings, stack)
        try:
            await broker.start()
        except (KafkaError, OSError) as exc:
            raise ServerUnavailable("Kafka", settings.kafka_bootstrap, exc) from exc
        stack.push_async_callback(broker.stop)
        yield


app = FastAPI(title="bulkops jobs", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
install_error_envelopes(app)


@app.get(
    "/v1/bulk/jobs/{jobId}",
    summary="A job's status, counts and (once completed) a 1-hour download link to its results",
    responses={
        200: {"model": Envelope[JobStatusBody], "description": "the job"},
        **error_responses({**COMMON_ERRORS, 404: "JOB_NOT_FOUND (unknown, expired or another org's job)"}),
    },
)
async def get_job(jobId: str, request: Request) -> JSONResponse:
    caller = caller_of(request, verifier)
    return ok(await handlers.job_status(jobId, caller, adapters, settings.download_url_ttl_seconds))


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
