"""Request-level errors: the contract's status and code, and nothing is written, no job is created."""
from __future__ import annotations

import json
from typing import AsyncIterator

import httpx
import pytest

from ..conftest import Api, new_org
from .conftest import assert_error, ok_data, post_raw, s3_keys, token

ONE = [{"userId": "u1", "email": "u1@example.com"}]
MANY = [{"userId": f"u{i}", "email": f"u{i}@example.com"} for i in range(150)]  # would be an async job


def _json(document) -> bytes:
    return json.dumps(document).encode()


INVALID_JSON = {
    "truncated": b'{"users": [{"userId": "u1"}',
    "trailing comma": b'{"users": [{"userId": "u1"},]}',
    "single quotes": b"{'users': [{'userId': 'u1'}]}",
    "NaN": b'{"users": [{"userId": "u1", "customFields": {"n": NaN}}]}',
    "Infinity": b'{"users": [{"userId": "u1", "customFields": {"n": -Infinity}}]}',
    "not UTF-8": b'{"users": [{"userId": "\xff\xfe"}]}',
    "empty body": b"",
    "two documents": b'{"users": [{"userId": "u1"}]} {"users": []}',
    "many users, truncated": _json({"users": MANY})[:-2],
}

VALIDATION_ERROR = {
    "users missing": {"options": {}},
    "users null": {"users": None},
    "users an object": {"users": {"userId": "u1"}},
    "users a string": {"users": "u1"},
    "users a number": {"users": 1},
    "users empty": {"users": []},
    "body an array": ONE,
    "body a string": "users",
    "body null": None,
    "options a string": {"users": ONE, "options": "upsert"},
    "options an array": {"users": ONE, "options": [True]},
    "options null": {"users": ONE, "options": None},
    "options a number": {"users": ONE, "options": 1},
    "upsert the string true": {"users": ONE, "options": {"upsert": "true"}},
    "skipDuplicates the number 1": {"users": ONE, "options": {"skipDuplicates": 1}},
    "sendWelcomeEmail null": {"users": ONE, "options": {"sendWelcomeEmail": None}},
    "sendWelcomeEmail the string false": {"users": ONE, "options": {"sendWelcomeEmail": "false"}},
    "an unknown option": {"users": ONE, "options": {"upsert": True, "dryRun": True}},
    "an unknown top-level key": {"users": ONE, "mode": "sync"},
    # The same with 100+ users: no job may be created either.
    "many users, upsert the string true": {"users": MANY, "options": {"upsert": "true"}},
    "many users, options an array": {"users": MANY, "options": []},
    "many users, an unknown top-level key": {"users": MANY, "priority": 1},
}


@pytest.fixture
async def org(nothing_written) -> AsyncIterator[str]:
    org = new_org()
    yield org
    await nothing_written(org)  # after every request-level error: no user, no S3 object, no job


@pytest.mark.parametrize("case", list(INVALID_JSON))
async def test_a_body_that_is_not_json_is_400_invalid_json(system, org, case):
    assert_error(await post_raw(system, org, INVALID_JSON[case]), 400, "INVALID_JSON")


@pytest.mark.parametrize("case", list(VALIDATION_ERROR))
async def test_users_missing_not_an_array_or_empty_and_bad_options_are_400_validation_error(system, org, case):
    error = assert_error(await post_raw(system, org, _json(VALIDATION_ERROR[case])), 400, "VALIDATION_ERROR")
    if case.startswith("users"):
        assert "users" in error["message"]


async def test_more_than_10000_users_is_400_too_many_users(system, org):
    users = [{"userId": f"u{i}"} for i in range(10_001)]
    error = assert_error(await post_raw(system, org, _json({"users": users})), 400, "TOO_MANY_USERS")
    assert "10000" in error["message"].replace(",", "") and "10001" in error["message"].replace(",", "")


async def test_a_body_over_the_limit_is_413_payload_too_large(system, org):
    """17 MiB of otherwise valid JSON (16 MiB is the default limit): by Content-Length, and chunked."""
    filler = "x" * (120 * 1024)
    body = _json({"users": [{"userId": f"u{i}", "customFields": {"f": filler}} for i in range(146)]})
    assert len(body) > 17 * 1024 * 1024
    assert_error(await post_raw(system, org, body), 413, "PAYLOAD_TOO_LARGE")

    async def chunks():
        for start in range(0, len(body), 1 << 20):
            yield body[start:start + (1 << 20)]

    assert_error(await post_raw(system, org, chunks()), 413, "PAYLOAD_TOO_LARGE")


async def test_a_body_just_under_the_limit_is_accepted(system, user_store, s3, bucket, mongo_jobs):
    """The other side of the limit: 15.9 MiB of users go in (as a job). Also shows that the
    `nothing_written` probes above do see a job's request object and view when there is one."""
    org = new_org()
    filler = "y" * (110 * 1024)
    body = _json({"users": [{"userId": f"u{i}", "customFields": {"f": filler}} for i in range(148)]})
    assert 15 * 1024 * 1024 < len(body) < 16 * 1024 * 1024
    accepted = ok_data(await post_raw(system, org, body), 202)
    assert accepted["totalRecords"] == 148
    api = Api(system, org)
    try:
        job = await api.wait_for_job(accepted["jobId"])
    finally:
        await api.close()
    assert (job["status"], job["created"]) == ("completed", 148)
    assert await s3_keys(s3, bucket, f"requests/{org}/") == [f"requests/{org}/{accepted['jobId']}.json"]
    assert await s3_keys(s3, bucket, f"results/{org}/") == [f"results/{org}/{accepted['jobId']}.jsonl"]
    assert await mongo_jobs.count_documents({"orgId": org}) == 1
    assert (await user_store.get_user(org, "u147")).custom_fields == {"f": filler}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml", "text/json"])
async def test_a_content_type_other_than_json_is_415(system, org, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    async with httpx.AsyncClient(timeout=30) as client:
        request = client.build_request("POST", f"{system.ingestUrl}/v1/bulk/users", content=_json({"users": ONE}))
        request.headers.pop("Content-Type", None)
        request.headers.update({"Authorization": f"Bearer {token(system.jwtSecret, org)}", "X-Org-ID": org, **headers})
        response = await client.send(request)
    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
async def test_json_with_or_without_charset_is_accepted(system, user_store, content_type):
    org = new_org()
    data = ok_data(await post_raw(system, org, _json({"users": ONE}), headers={"Content-Type": content_type}))
    assert data["created"] == 1 and await user_store.get_user(org, "u1") is not None
