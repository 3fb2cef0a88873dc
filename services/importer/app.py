"""importer: the FastStream entrypoint. `faststream run services.importer.app:app`."""
from __future__ import annotations

from contextlib import AsyncExitStack

import structlog
from faststream import AckPolicy, FastStream
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from shared.events import ImportCompleted, ImportFailed, ImportRequested, Topics
from shared.logging import configure_logging, library_logger

from .adapters import ImporterAdapters, open_adapters
from .handlers import failed_for_invalid_event, handle_import_requested
from .settings import ImporterSettings

settings = ImporterSettings()
configure_logging("importer", settings.log_level)
log = structlog.get_logger()
broker = KafkaBroker(settings.kafka_bootstrap, client_id="bulkops-importer", logger=library_logger("bulkops.broker"), acks="all")
app = FastStream(broker, logger=library_logger("bulkops.broker"))
resources = AsyncExitStack()
adapters: ImporterAdapters


@app.on_startup
async def open_resources() -> None:
    global adapters
    adapters = await open_adapters(settings, resources, broker)


@app.after_shutdown
async def close_resources() -> None:
    await resources.aclose()


# The offset is committed only after the handler returns (AckPolicy.ACK): a crash mid-job means
# the message comes again, and the handler is safe to run twice.
@broker.subscriber(Topics.IMPORT_REQUESTED, group_id=settings.group_id, auto_offset_reset="earliest", ack_policy=AckPolicy.ACK)
async def on_import_requested(message: KafkaMessage) -> None:
    body = message.body  # raw bytes: the schema is checked here so a bad event can be reported
    try:
        event = ImportRequested.model_validate_json(body)
    except ValidationError as exc:
        failed = failed_for_invalid_event(body, exc)
        log.error("invalid import.requested", error=str(exc), jobId=failed.jobId if failed else None)
        if failed is not None:
            await adapters.events.publish(failed)
        return
    with structlog.contextvars.bound_contextvars(jobId=event.jobId, orgId=event.orgId):
        final: ImportCompleted | ImportFailed = await handle_import_requested(event, adapters, settings.chunk_rows)
        log.info("handled import.requested", outcome=final.eventType)
