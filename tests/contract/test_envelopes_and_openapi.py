"""The response envelopes and field names of the contract, and the services' OpenAPI descriptions."""
from __future__ import annotations

import httpx
import pytest

from ..conftest import Api
from .conftest import ISO_MS, assert_error, ok_data, post_raw, token

SYNC_FIELDS = {"mode", "total", "created", "updated", "skipped", "failed", "results"}
ASYNC_FIELDS = {"mode", "jobId", "status", "totalRecords", "statusUrl"}
ROW_FIELDS = {"index", "userId", "email", "status"}
JOB_FIELDS = {
    "jobId", "status", "totalRecords", "processed", "created", "updated", "skipped", "failed", "createdAt", "startedAt",
    "completedAt", "expiresAt", "downloadUrl", "downloadUrlExpiresAt", "error",
}


async def test_success_envelopes_and_field_names(api: Api):
    response = await api.import_users([{"userId": "e1", "email": "e1@env.io"}, {"email": "bad"}])
    assert response.headers["content-type"].startswith("application/json")
    data = ok_data(response)
    assert set(data) == SYNC_FIELDS and data["mode"] == "sync"
    created, failed = data["results"]
    assert set(created) == ROW_FIELDS and created == {"index": 0, "userId": "e1", "email": "e1@env.io", "status": "created"}
    assert set(failed) == ROW_FIELDS | {"error"} and set(failed["error"]) == {"code", "message", "field"}

    accepted = ok_data(await api.import_users([{"userId": f"e{i}"} for i in range(100)]), 202)
    assert set(accepted) == ASYNC_FIELDS and (accepted["mode"], accepted["status"], accepted["totalRecords"]) == ("async", "pending", 100)
    job = ok_data(await api.job(accepted["jobId"]))
    assert set(job) == JOB_FIELDS
    for name in ("createdAt", "expiresAt"):
        assert __import__("re").match(ISO_MS, job[name]), job[name]
    await api.wait_for_job(accepted["jobId"])


async def test_error_envelopes_on_every_kind_of_error(system, api: Api):
    ingest, jobs = f"{system.ingestUrl}/v1/bulk/users", f"{system.jobsUrl}/v1/bulk/jobs"
    good = {"Authorization": f"Bearer {api.token}", "X-Org-ID": api.org}
    async with httpx.AsyncClient(timeout=30) as client:
        checks = [
            (await client.post(ingest, json={"users": []}), 401, "UNAUTHORIZED"),
            (await client.get(f"{jobs}/job_x", headers={"Authorization": f"Bearer {token(system.jwtSecret, api.org, roles=('user',))}", "X-Org-ID": api.org}), 403, "FORBIDDEN"),
            (await client.get(f"{jobs}/job_x", headers={"Authorization": good["Authorization"]}), 400, "VALIDATION_ERROR"),
            (await client.post(ingest, json={"users": []}, headers=good), 400, "VALIDATION_ERROR"),
            (await client.post(ingest, content=b"{", headers={**good, "Content-Type": "application/json"}), 400, "INVALID_JSON"),
            (await client.post(ingest, content=b"users=1", headers={**good, "Content-Type": "text/plain"}), 415, "UNSUPPORTED_MEDIA_TYPE"),
            (await client.get(f"{jobs}/job_x", headers=good), 404, "JOB_NOT_FOUND"),
            (await client.get(f"{system.ingestUrl}/v1/nowhere", headers=good), 404, "NOT_FOUND"),
            (await client.get(ingest, headers=good), 405, "METHOD_NOT_ALLOWED"),
        ]
    for response, status, code in checks:
        assert_error(response, status, code)
        assert response.headers["content-type"].startswith("application/json")
    error = assert_error(await post_raw(system, api.org, b'{"users": [], "x": 1}'), 400, "VALIDATION_ERROR")
    assert error["details"], "a validation error says which field"


@pytest.fixture(scope="module")
async def openapi(system) -> dict[str, dict]:
    async with httpx.AsyncClient(timeout=30) as client:
        return {name: (await client.get(f"{url}/openapi.json")).json() for name, url in (("ingest", system.ingestUrl), ("jobs", system.jobsUrl))}


def resolve(document: dict, schema: dict) -> dict:
    while "$ref" in schema:
        node = document
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def documented_fields(document: dict, response: dict) -> set[str]:
    envelope = resolve(document, response["content"]["application/json"]["schema"])
    assert set(envelope["properties"]) == {"success", "data"}
    return set(resolve(document, envelope["properties"]["data"])["properties"])


async def test_the_ingest_openapi_documents_the_import_endpoint(openapi):
    document = openapi["ingest"]
    operation = document["paths"]["/v1/bulk/users"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    body = resolve(document, body)
    assert operation["requestBody"]["required"] is True
    assert body["required"] == ["users"] and set(body["properties"]) == {"users", "options"}
    assert body["properties"]["users"]["type"] == "array" and body["properties"]["users"]["maxItems"] == 10_000
    options = body["properties"]["options"]
    options = resolve(body, options) if "$ref" in options and options["$ref"].startswith("#/$defs") else resolve(document, options)
    assert {k: (v["type"], v["default"]) for k, v in options["properties"].items()} == {
        "upsert": ("boolean", True), "skipDuplicates": ("boolean", False), "sendWelcomeEmail": ("boolean", False)
    }
    responses = operation["responses"]
    assert set(responses) == {"200", "202", "400", "401", "403", "413", "415", "503"}
    assert documented_fields(document, responses["200"]) == SYNC_FIELDS
    assert documented_fields(document, responses["202"]) == ASYNC_FIELDS
    row = resolve(document, resolve(document, document["components"]["schemas"]["SyncImportResult"])["properties"]["results"]["items"])
    assert set(row["properties"]) == ROW_FIELDS | {"error"}
    for status in ("400", "401", "403", "413", "415", "503"):
        assert resolve(document, responses[status]["content"]["application/json"]["schema"])["title"] == "ErrorEnvelope", status
    for code in ("VALIDATION_ERROR", "INVALID_JSON", "TOO_MANY_USERS"):
        assert code in responses["400"]["description"]
    assert "PAYLOAD_TOO_LARGE" in responses["413"]["description"] and "UNSUPPORTED_MEDIA_TYPE" in responses["415"]["description"]


async def test_the_jobs_openapi_documents_the_status_endpoint(openapi):
    document = openapi["jobs"]
    operation = document["paths"]["/v1/bulk/jobs/{jobId}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [("jobId", "path", True)]
    responses = operation["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "503"}  # 400, not FastAPI's 422
    assert documented_fields(document, responses["200"]) == JOB_FIELDS
    for status in ("400", "401", "403", "404", "503"):
        assert resolve(document, responses[status]["content"]["application/json"]["schema"])["title"] == "ErrorEnvelope", status
    assert "JOB_NOT_FOUND" in responses["404"]["description"]
    assert "TOO_MANY_USERS" not in responses["400"]["description"]  # that is ingest's
