"""The published AsyncAPI document is the events' own schemas, and says what they really carry."""
import json
from pathlib import Path

import jsonschema
import pytest

from shared.asyncapi import asyncapi_document, asyncapi_json
from shared.events import (
    Counts, ErrorInfo, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, ObjectLocation, Topics,
    WelcomeEmailRequested,
)

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"
JOB = dict(jobId="job_00000000-0000-4000-8000-000000000000", orgId="acme", totalRecords=2, createdAt="2026-12-04T00:00:00.000Z")
STARTED = "2026-12-04T00:00:01.000Z"


def test_the_committed_document_is_the_one_the_schemas_give():
    assert DOCUMENT.read_text(encoding="utf-8") == asyncapi_json(), "run: python -m shared.asyncapi > docs/asyncapi.json"


def test_every_topic_is_documented_with_the_event_it_carries():
    document = asyncapi_document()
    assert set(document["channels"]) == set(Topics.ALL)
    for topic, channel in document["channels"].items():
        (operation,) = set(channel) - {"description"}
        assert operation == ("publish" if topic == Topics.IMPORT_REQUESTED else "subscribe")
        name = channel[operation]["message"]["$ref"].rsplit("/", 1)[1]
        assert document["components"]["messages"][name]["name"] == topic
        assert document["components"]["schemas"][name]["properties"]["eventType"]["const"] == topic


def test_events_as_published_match_their_documented_schema():
    samples = [
        ImportRequested(**{k: JOB[k] for k in ("jobId", "orgId", "totalRecords")}, users=[{"userId": "a"}, {"email": "b@x.io"}]),
        ImportStarted(**JOB, startedAt=STARTED),
        ImportProgress(**JOB, startedAt=STARTED, counts=Counts(processed=1, created=1)),
        ImportCompleted(**JOB, startedAt=STARTED, completedAt=STARTED, counts=Counts(processed=2, created=2),
                        resultsLocation=ObjectLocation(bucket="b", key="results/acme/x.jsonl")),
        ImportFailed(**JOB, failedAt=STARTED, error=ErrorInfo(code="INTERNAL_ERROR", message="boom")),
        WelcomeEmailRequested.for_user("acme", "a", "a@x.io", JOB["jobId"]),
    ]
    for event in samples:
        validate(json.loads(event.model_dump_json()), type(event).__name__)
    wrong = json.loads(samples[2].model_dump_json()) | {"counts": {"processed": "many"}}
    with pytest.raises(jsonschema.ValidationError):
        validate(wrong, "ImportProgress")


def validate(instance: dict, name: str) -> None:
    # The schemas refer to each other as #/components/schemas/...: resolve them inside the document.
    components = asyncapi_document()["components"]
    jsonschema.validate(instance, {**components["schemas"][name], "components": components})
