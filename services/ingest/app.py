"""ingest: the HTTP entrypoint for admins. `uvicorn services.ingest.app:app`."""
from __future__ import annotations

from contextlib import AsyncExitStack, asynccontextmanager
from typing import AsyncIterator

from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker

from shared.adapters.aws import ServerUnavailable
from shared.api import AsyncImportAccepted, ApiError, Envelope, ImportRequest, SyncImportResult, parse_import_request
from shared.http import COMMON_ERRORS, caller_of, error_responses, install_error_envelopes, ok, token_verifier
from shared.logging import configure_logging, library_logger

from . import handlers
from .adapters import IngestAdapters, open_adapters
from .settings import IngestSettings

settings = IngestSettings()
configure_logging("ingest", settings.log_level)
verifier = token_verifier(settings)
# A short request timeout: an admin waiting on a 202 should hear about a Kafka outage in seconds.
broker = KafkaBroker(
    settings.kafka_bootstrap, client_id="bulkops-ingest", logger=library_logger("bulkops.broker"), acks="all",
    request_timeout_ms=10_000,
)
adapters: IngestAdapters


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global adapters
    async with AsyncExitStack() as stack:
        try:
            await broker.start()
        except (KafkaError, OSError) as exc:
            raise ServerUnavailable("Kafka", settings.kafka_bootstrap, exc) from exc
        stack.push_async_callback(broker.stop)
        adapters = await open_adapters(settings, stack, broker)
        yield


app = FastAPI(title="bulkops ingest", version="1.0.0", lifespan=lifespan, redirect_slashes=False)
install_error_envelopes(app)


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_body_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body is larger than {settings.max_body_bytes} bytes")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > settings.max_body_bytes:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"body is larger than {settings.max_body_bytes} bytes")
    return bytes(body)


@app.post(
    "/v1/bulk/users",
    summary="Import or update up to 10,000 users",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": ImportRequest.model_json_schema()}}}},
    responses={
        200: {"model": Envelope[SyncImportResult], "description": "fewer than 100 users: every row's result"},
        202: {"model": Envelope[AsyncImportAccepted], "description": "100 users or more: a background job"},
        **error_responses({
            **COMMON_ERRORS,
            400: "INVALID_JSON (body is not valid JSON), TOO_MANY_USERS (more than 10,000 users), VALIDATION_ERROR "
                 "(users missing, not an array or empty; options not an object or of the wrong type; X-Org-ID missing)",
            413: "PAYLOAD_TOO_LARGE (body larger than the configured limit, 16 MiB by default)",
            415: "UNSUPPORTED_MEDIA_TYPE (send application/json)",
        }),
    },
)
async def import_users(request: Request) -> JSONResponse:
    caller = caller_of(request, verifier)
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    charset = parameters.strip().lower().removeprefix("charset=").strip('"') if "charset=" in parameters.lower() else "utf-8"
    if media_type.strip().lower() != "application/json" or charset not in ("utf-8", "utf8"):
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json in UTF-8")
    body = await _read_body(request)
    import_request = parse_import_request(body)
    try:
        if handlers.is_sync(import_request):
            return ok(await handlers.import_now(import_request, caller, adapters))
        return ok(await handlers.start_job(import_request, body, caller, adapters, settings), status=202)
    except KafkaError as exc:
        raise ServerUnavailable("Kafka", settings.kafka_bootstrap, exc) from exc


@app.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
