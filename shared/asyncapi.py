"""The AsyncAPI document of the bulkops events, built from their one definition in `events.py`.

`python -m shared.asyncapi > docs/asyncapi.json` writes it; a unit test fails when the committed
document and the schemas disagree, so the published API cannot drift from the code.
"""
from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import events
from .events import (
    SCHEMA_VERSION, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, Topics, WelcomeEmailRequested,
)

# topic: (payload, who publishes it, what it means). Every topic is keyed by jobId except welcome emails (userId).
CHANNELS: dict[str, tuple[type[BaseModel], str, str]] = {
    Topics.IMPORT_REQUESTED: (ImportRequested, "ingest, or any service that wants an import", "Ask for an import; consumed by the importers."),
    Topics.IMPORT_STARTED: (ImportStarted, "importer", "An importer took the job."),
    Topics.IMPORT_PROGRESS: (ImportProgress, "importer", "Cumulative counts after each chunk of rows (never deltas)."),
    Topics.IMPORT_COMPLETED: (ImportCompleted, "importer", "Every row has its outcome; the row-by-row results are in S3."),
    Topics.IMPORT_FAILED: (ImportFailed, "importer", "The job could not be carried out (error.code says why)."),
    Topics.WELCOME_EMAIL_REQUESTED: (WelcomeEmailRequested, "importer, ingest", "Send a welcome email to a user an import created."),
}


def asyncapi_document() -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model, _, _ in CHANNELS.values()], ref_template="#/components/schemas/{model}")
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic, (model, publisher, meaning) in CHANNELS.items():
        name = model.__name__
        key = "userId" if topic == Topics.WELCOME_EMAIL_REQUESTED else "jobId"
        # AsyncAPI 2: bulkops' own events are what a client subscribes to; import.requested is
        # what a client publishes.
        operation = "publish" if topic == Topics.IMPORT_REQUESTED else "subscribe"
        channels[topic] = {
            "description": f"{meaning} Published by: {publisher}.",
            operation: {"operationId": name, "message": {"$ref": f"#/components/messages/{name}"}},
        }
        messages[name] = {
            "name": topic,
            "title": name,
            "summary": (model.__doc__ or meaning).split("\n\n")[0].replace("\n", " ").strip(),
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": key}, "bindingVersion": "0.4.0"}},
        }
    return {
        "asyncapi": "2.6.0",
        "info": {"title": "bulkops events", "version": str(SCHEMA_VERSION), "description": (events.__doc__ or "").strip()},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {"messages": messages, "schemas": top["$defs"]},
    }


def asyncapi_json() -> str:
    return json.dumps(asyncapi_document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(asyncapi_json(), end="")
