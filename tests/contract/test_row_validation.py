"""Row-level validation: the contract's codes in its order; a bad row fails alone, the others go in."""
from __future__ import annotations

import pytest

from ..conftest import Api
from .conftest import counts, ok_data, org_records

GOOD = {"userId": "good", "email": "good@example.com"}
# (row, expected code, expected field): each row is bad in one way, or in several and the
# contract's order decides which code it gets.
BAD_ROWS = [
    ({}, "MISSING_IDENTIFIER", "userId"),
    ({"customFields": {"a": 1}, "metadata": {}}, "MISSING_IDENTIFIER", "userId"),
    ({"userId": None, "email": None}, "MISSING_IDENTIFIER", "userId"),
    ("u-string", "MISSING_IDENTIFIER", "userId"),
    (["u1"], "MISSING_IDENTIFIER", "userId"),
    (None, "MISSING_IDENTIFIER", "userId"),
    ({"userId": ""}, "INVALID_USER_ID", "userId"),
    ({"userId": "x" * 257}, "INVALID_USER_ID", "userId"),
    ({"userId": 123}, "INVALID_USER_ID", "userId"),
    ({"userId": ["u1"]}, "INVALID_USER_ID", "userId"),
    ({"userId": True, "email": "t@example.com"}, "INVALID_USER_ID", "userId"),
    ({"userId": {"id": 1}}, "INVALID_USER_ID", "userId"),
    ({"email": "no-at-sign"}, "INVALID_EMAIL", "email"),
    ({"email": "a@b"}, "INVALID_EMAIL", "email"),
    ({"email": "a b@example.com"}, "INVALID_EMAIL", "email"),
    ({"email": "a@@example.com"}, "INVALID_EMAIL", "email"),
    ({"userId": "e1", "email": ""}, "INVALID_EMAIL", "email"),
    ({"userId": "e2", "email": 42}, "INVALID_EMAIL", "email"),
    ({"userId": "e3", "email": ["a@example.com"]}, "INVALID_EMAIL", "email"),
    ({"userId": "c1", "customFields": "gold"}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "c2", "customFields": ["gold"]}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "c3", "customFields": 7}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "c4", "customFields": True}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "c5", "customFields": None}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "m1", "metadata": "crm"}, "INVALID_METADATA", "metadata"),
    ({"userId": "m2", "metadata": ["crm"]}, "INVALID_METADATA", "metadata"),
    ({"userId": "m3", "metadata": 1.5}, "INVALID_METADATA", "metadata"),
    ({"userId": "m4", "metadata": False}, "INVALID_METADATA", "metadata"),
    ({"userId": "m5", "metadata": None}, "INVALID_METADATA", "metadata"),
    # Several faults: the first in the contract's order wins.
    ({"userId": "", "email": "bad", "customFields": 1, "metadata": 1}, "INVALID_USER_ID", "userId"),
    ({"userId": "o1", "email": "bad", "customFields": 1, "metadata": 1}, "INVALID_EMAIL", "email"),
    ({"email": "o2@example.com", "customFields": [], "metadata": []}, "INVALID_CUSTOM_FIELDS", "customFields"),
    ({"userId": "o3", "metadata": "x", "firstName": "Ann"}, "INVALID_METADATA", "metadata"),
    # README choice: an unknown field fails the row (after the contract's codes).
    ({"userId": "k1", "firstName": "Ann"}, "UNKNOWN_FIELD", "firstName"),
]


async def test_each_bad_row_fails_alone_with_the_contracts_code_in_order(api: Api, user_store):
    users = []
    for row, _, _ in BAD_ROWS:
        users += [row, dict(GOOD, userId=f"good{len(users)}", email=f"good{len(users)}@example.com")]
    assert len(users) < 100
    data = ok_data(await api.import_users(users))
    n = len(BAD_ROWS)
    assert counts(data) == (2 * n, n, 0, 0, n)
    assert [r["index"] for r in data["results"]] == list(range(2 * n))
    for number, (row, code, field) in enumerate(BAD_ROWS):
        bad, good = data["results"][2 * number], data["results"][2 * number + 1]
        assert (bad["status"], bad["error"]["code"], bad["error"]["field"]) == ("failed", code, field), row
        assert bad["error"]["message"]
        assert good["status"] == "created" and "error" not in good, good
    # Only the good rows were stored: n users and their n email claims.
    items = await org_records(user_store, api.org)
    assert sorted(i["key"]["S"] for i in items) == sorted(
        [f"user#good{2 * k}" for k in range(n)] + [f"email#good{2 * k}@example.com" for k in range(n)]
    )


async def test_a_failed_row_reports_what_it_sent(api: Api):
    data = ok_data(await api.import_users([{"userId": "r1", "email": "nope"}, {"userId": 5}, "x"]))
    assert [(r["userId"], r["email"]) for r in data["results"]] == [("r1", "nope"), (5, None), (None, None)]


@pytest.mark.parametrize("length", [1, 256])
async def test_user_ids_of_1_to_256_characters_are_valid(api: Api, user_store, length):
    user_id = "é" * length  # characters, not bytes
    data = ok_data(await api.import_users([{"userId": user_id}]))
    assert counts(data) == (1, 1, 0, 0, 0)
    assert (await user_store.get_user(api.org, user_id)).user_id == user_id


async def test_valid_edge_rows_are_accepted(api: Api, user_store):
    users = [
        {"userId": "n1", "email": None},  # README: null counts as absent
        {"userId": None, "email": "n2@example.com"},
        {"email": "first.last+tag@sub.example.co.uk"},
        {"userId": "n4", "customFields": {}, "metadata": {}},
        {"userId": "n5", "customFields": {"nested": {"a": [1, {"b": None}]}, "empty": "", "flag": False}},
    ]
    data = ok_data(await api.import_users(users))
    assert counts(data) == (5, 5, 0, 0, 0), data["results"]
    assert (await user_store.get_user(api.org, "n5")).custom_fields == users[4]["customFields"]


async def test_a_row_the_store_cannot_hold_fails_alone(api: Api, user_store):
    """Too large for one DynamoDB item (400 KB) or a number DynamoDB cannot represent: that row fails
    validation with its field's code and a reason; its neighbours go in."""
    users = [{"userId": f"s{i}"} for i in range(10)]
    users[3] = {"userId": "big", "customFields": {"blob": "z" * 450_000}}
    users[6] = {"userId": "huge-number", "metadata": {"n": 1e300}}
    data = ok_data(await api.import_users(users))
    assert counts(data) == (10, 8, 0, 0, 2)
    assert [r["status"] for r in data["results"]] == ["created"] * 3 + ["failed"] + ["created"] * 2 + ["failed"] + ["created"] * 3
    assert [data["results"][i]["error"]["code"] for i in (3, 6)] == ["INVALID_CUSTOM_FIELDS", "INVALID_METADATA"]
    assert await user_store.get_user(api.org, "big") is None and await user_store.get_user(api.org, "s9") is not None


async def test_a_write_the_store_refuses_leaves_nothing_behind(api: Api, user_store):
    """A userId of 256 emoji is valid by the contract but its key is over DynamoDB's 1,024 bytes: the
    row fails with WRITE_FAILED, its email claim is released, and the email stays free."""
    too_long = "\U0001F600" * 256
    data = ok_data(await api.import_users([{"userId": too_long, "email": "ghost@example.com"}, {"userId": "ok1"}]))
    assert [(r["status"], r.get("error", {}).get("code")) for r in data["results"]] == [("failed", "WRITE_FAILED"), ("created", None)]
    data = ok_data(await api.import_users([{"userId": "g2", "email": "ghost@example.com"}]))
    assert data["results"][0]["status"] == "created", data["results"]
    assert (await user_store.get_user(api.org, "g2")).email == "ghost@example.com"