"""The same rows give the same per-row results through the sync path (99 rows) and the async path."""
from __future__ import annotations

from typing import Any

import pytest

from .conftest import counts, ok_data, org_users

SEED = [
    {"userId": "p-exist", "email": "exist@parity.io", "customFields": {"a": 1}},
    {"userId": "p-owner", "email": "owned@parity.io"},
    {"email": "byemail@parity.io", "metadata": {"seed": True}},
]


def rows() -> list[Any]:
    users: list[Any] = [
        {"userId": "p-new", "email": "new@parity.io"},  # 0 created
        {"userId": "p-exist", "customFields": {"b": 2}},  # 1 existing
        {"email": "BYEMAIL@parity.io", "metadata": {"x": 1}},  # 2 existing, by email
        {"userId": "p-new2", "email": "owned@parity.io"},  # 3 IDENTITY_CONFLICT
        {"customFields": {}},  # 4 MISSING_IDENTIFIER
        {"userId": ""},  # 5 INVALID_USER_ID
        {"userId": "p-bad", "email": "nope"},  # 6 INVALID_EMAIL
        {"userId": "p-cf", "customFields": []},  # 7 INVALID_CUSTOM_FIELDS
        {"userId": "p-md", "metadata": "x"},  # 8 INVALID_METADATA
        {"userId": "p-unknown", "name": "x"},  # 9 UNKNOWN_FIELD
        {"userId": "p-new", "customFields": {"again": 1}},  # 10 row 0 again
        {"email": "solo@parity.io"},  # 11 created, email only
        {"email": "Solo@Parity.io"},  # 12 row 11 again
        {"userId": "p-exist", "email": "fresh@parity.io"},  # 13 email change
        {"userId": "p-claim", "email": "exist@parity.io"},  # 14 the freed email
        {"userId": "p-claim2", "email": "FRESH@parity.io"},  # 15 IDENTITY_CONFLICT
        "not an object",  # 16 MISSING_IDENTIFIER
        {"userId": "x" * 257},  # 17 INVALID_USER_ID
    ]
    i = len(users)
    while len(users) < 99:
        kind = i % 5
        users.append(
            {"userId": f"p{i}", "email": f"p{i}@parity.io"} if kind == 0
            else {"userId": f"p{i - 5}", "metadata": {"i": i}} if kind == 1 and i > 22
            else {"email": f"P{i - 1}@PARITY.io", "customFields": {"i": i}} if kind == 2 and i > 22
            else {"userId": f"p{i}", "email": f"p{i}@"} if kind == 3
            else {"userId": f"p{i}", "email": f"p{i}@parity.io", "customFields": {"n": i}}
        )
        i += 1
    return users


def outcome(row: dict[str, Any]) -> tuple:
    return (row["index"], row["status"], row.get("error", {}).get("code"), row.get("error", {}).get("field"))


@pytest.mark.parametrize("options", [{}, {"upsert": False}, {"skipDuplicates": True}], ids=["defaults", "no-upsert", "skip-duplicates"])
async def test_sync_and_async_paths_give_the_same_results_for_the_same_rows(api_factory, user_store, options):
    sync_api, async_api = api_factory(), api_factory()
    for api in (sync_api, async_api):
        ok_data(await api.import_users(SEED))
    users = rows()
    assert len(users) == 99
    sync = ok_data(await sync_api.import_users(users, **options))
    accepted = ok_data(await async_api.import_users(users + [{"userId": "p-last"}], **options), 202)
    job = await async_api.wait_for_job(accepted["jobId"])
    async_rows = await async_api.results(job)

    assert [outcome(r) for r in sync["results"]] == [outcome(r) for r in async_rows[:99]]
    assert outcome(async_rows[99]) == (99, "created", None, None)
    for s, a in zip(sync["results"], async_rows):
        assert set(s) == set(a), (s, a)  # the same fields, `error` only on failed rows
        if isinstance(users[s["index"]], dict) and users[s["index"]].get("userId") is not None:
            assert (s["userId"], s["email"]) == (a["userId"], a["email"])
    assert counts(sync)[1:] == (job["created"] - 1, job["updated"], job["skipped"], job["failed"])
    seen = {r["status"] if r["status"] != "failed" else r["error"]["code"] for r in sync["results"]}
    expected = {"created", "IDENTITY_CONFLICT", "MISSING_IDENTIFIER", "INVALID_USER_ID", "INVALID_EMAIL",
                "INVALID_CUSTOM_FIELDS", "INVALID_METADATA", "UNKNOWN_FIELD"}
    expected.add("skipped" if options.get("skipDuplicates") else "USER_EXISTS" if options.get("upsert") is False else "updated")
    assert seen == expected  # the rows exercise every outcome these options allow

    # And the same users end up stored (generated ids differ between the two imports).
    def shape(users):
        return sorted(
            (u.user_id if u.user_id.startswith("p") else "generated", u.email, str(u.custom_fields), str(u.metadata))
            for u in users.values() if u.user_id != "p-last"
        )
    sync_users, async_users = await org_users(user_store, sync_api.org), await org_users(user_store, async_api.org)
    assert len(sync_users) > 1 and shape(sync_users) == shape(async_users)
