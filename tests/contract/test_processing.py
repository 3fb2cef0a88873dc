"""Processing valid rows: the options matrix, identity by userId or email, and the update merge."""
from __future__ import annotations

import re

import pytest

from ..conftest import Api
from .conftest import USR_ID, counts, ok_data, statuses

SEED = {"userId": "old", "email": "old@matrix.io", "customFields": {"v": "seed", "keep": 1}, "metadata": {"src": "seed"}}
ROWS = [
    {"userId": "new", "email": "new@matrix.io", "customFields": {"v": "first"}},  # 0 a new user
    {"userId": "old", "customFields": {"v": "second"}},  # 1 an existing user, by userId
    {"userId": "new", "customFields": {"v": "again"}},  # 2 row 0's user again
    {"email": "OLD@Matrix.io", "metadata": {"via": "email"}},  # 3 the existing user, by email
    {"email": "twice@matrix.io"},  # 4 a new email-only user
    {"email": "Twice@Matrix.IO", "customFields": {"x": 1}},  # 5 row 4's user again, by email
]
EXISTS = "failed:USER_EXISTS"
MATRIX = {
    # (upsert, skipDuplicates): the status of each row
    (True, False): ["created", "updated", "updated", "updated", "created", "updated"],
    (False, False): ["created", EXISTS, EXISTS, EXISTS, "created", EXISTS],
    (True, True): ["created", "skipped", "skipped", "skipped", "created", "skipped"],
    (False, True): ["created", "skipped", "skipped", "skipped", "created", "skipped"],
}


@pytest.mark.parametrize("upsert,skip", list(MATRIX))
async def test_the_options_matrix_for_new_existing_and_repeated_users(api: Api, user_store, upsert, skip):
    ok_data(await api.import_users([SEED]))
    before = await user_store.get_user(api.org, "old")
    data = ok_data(await api.import_users(ROWS, upsert=upsert, skipDuplicates=skip))
    expected = MATRIX[(upsert, skip)]
    assert statuses(data["results"]) == expected
    assert counts(data) == (6, expected.count("created"), expected.count("updated"), expected.count("skipped"), expected.count(EXISTS))
    results = data["results"]
    generated = results[4]["userId"]
    assert re.match(USR_ID, generated)
    old, new, twice = [await user_store.get_user(api.org, u) for u in ("old", "new", generated)]
    if expected[1] == "updated":
        assert [r["userId"] for r in results] == ["new", "old", "new", "old", generated, generated]
        assert old.custom_fields == {"v": "second", "keep": 1} and old.metadata == {"src": "seed", "via": "email"}
        assert (old.email, old.created_at) == ("OLD@Matrix.io", before.created_at)  # README: last casing wins
        assert new.custom_fields == {"v": "again"} and new.email == "new@matrix.io"
        assert twice.custom_fields == {"x": 1} and twice.email == "Twice@Matrix.IO"
    else:
        assert old == before, "a skipped or refused row must leave the user untouched"
        assert new.custom_fields == {"v": "first"} and twice.custom_fields == {}
    if skip:  # skipped rows name the existing user
        assert [(r["userId"], r["email"]) for r in results if r["status"] == "skipped"] == [
            ("old", "old@matrix.io"), ("new", "new@matrix.io"), ("old", "old@matrix.io"), (generated, "twice@matrix.io")
        ]
    if expected[1] == EXISTS:
        assert [r["error"]["field"] for r in results if r["status"] == "failed"] == ["userId", "userId", "email", "email"]


async def test_defaults_are_upsert_true_skip_duplicates_false(api: Api):
    ok_data(await api.import_users([SEED]))
    data = ok_data(await api.import_users(ROWS))
    assert statuses(data["results"]) == MATRIX[(True, False)]


# -- identity --------------------------------------------------------------------------------------


async def test_identity_by_user_id(api: Api, user_store):
    ok_data(await api.import_users([{"userId": "u1", "email": "u1@id.io"}]))
    data = ok_data(await api.import_users([{"userId": "u1", "customFields": {"a": 1}}]))
    assert statuses(data["results"]) == ["updated"] and data["results"][0]["email"] == "u1@id.io"
    assert (await user_store.get_user(api.org, "u1")).email == "u1@id.io"


async def test_identity_by_email_is_case_insensitive(api: Api, user_store):
    first = ok_data(await api.import_users([{"email": "Ann.Lee@Example.com"}, {"userId": "u2", "email": "bob@example.com"}]))
    ann = first["results"][0]["userId"]
    assert re.match(USR_ID, ann) and first["results"][1]["userId"] == "u2"
    data = ok_data(await api.import_users([
        {"email": "ann.lee@EXAMPLE.COM", "customFields": {"a": 1}},
        {"email": "BOB@example.com", "metadata": {"m": 1}},
    ]))
    assert statuses(data["results"]) == ["updated", "updated"]
    assert [r["userId"] for r in data["results"]] == [ann, "u2"]
    # README: the stored email keeps the casing of the last row that set it.
    assert (await user_store.get_user(api.org, ann)).email == "ann.lee@EXAMPLE.COM"
    assert (await user_store.get_user(api.org, "u2")).metadata == {"m": 1}


async def test_new_email_only_users_get_distinct_usr_ids(api: Api, user_store):
    data = ok_data(await api.import_users([{"email": f"e{i}@gen.io"} for i in range(5)]))
    ids = [r["userId"] for r in data["results"]]
    assert all(re.match(USR_ID, i) for i in ids) and len(set(ids)) == 5
    assert [(await user_store.get_user(api.org, i)).email for i in ids] == [f"e{i}@gen.io" for i in range(5)]


async def test_an_email_belonging_to_another_user_is_identity_conflict(api: Api, user_store):
    ok_data(await api.import_users([{"userId": "owner", "email": "taken@id.io"}, {"userId": "other", "email": "other@id.io"}]))
    data = ok_data(await api.import_users([
        {"userId": "newcomer", "email": "TAKEN@id.io"},  # a new user claiming a taken email
        {"userId": "other", "email": "taken@id.io", "customFields": {"x": 1}},  # an existing user claiming it
        {"userId": "owner", "email": "Taken@ID.io"},  # the owner itself, other casing: fine
    ]))
    assert statuses(data["results"]) == ["failed:IDENTITY_CONFLICT", "failed:IDENTITY_CONFLICT", "updated"]
    assert [r["error"]["field"] for r in data["results"][:2]] == ["email", "email"]
    assert counts(data) == (3, 0, 1, 0, 2)
    assert await user_store.get_user(api.org, "newcomer") is None
    other = await user_store.get_user(api.org, "other")
    assert (other.email, other.custom_fields) == ("other@id.io", {})


async def test_a_user_id_row_may_change_its_email_to_an_unused_one(api: Api, user_store):
    ok_data(await api.import_users([{"userId": "mover", "email": "before@id.io"}, {"userId": "holder", "email": "held@id.io"}]))
    data = ok_data(await api.import_users([
        {"userId": "mover", "email": "held@id.io"},  # taken by someone else: refused
        {"userId": "mover", "email": "after@id.io"},  # unused: the email changes
    ]))
    assert statuses(data["results"]) == ["failed:IDENTITY_CONFLICT", "updated"]
    assert (await user_store.get_user(api.org, "mover")).email == "after@id.io"
    data = ok_data(await api.import_users([
        {"userId": "late", "email": "before@id.io"},  # the old email is free again
        {"userId": "rival", "email": "AFTER@id.io"},  # the new one is taken
        {"email": "after@id.io", "metadata": {"found": "by new email"}},  # and now finds the mover
    ]))
    assert statuses(data["results"]) == ["created", "failed:IDENTITY_CONFLICT", "updated"]
    assert data["results"][2]["userId"] == "mover"
    assert (await user_store.get_user(api.org, "late")).email == "before@id.io"
    assert await user_store.get_user(api.org, "rival") is None


async def test_email_changes_within_one_request_apply_in_input_order(api: Api, user_store):
    ok_data(await api.import_users([{"userId": "a", "email": "a@order.io"}]))
    data = ok_data(await api.import_users([
        {"userId": "b", "email": "a@order.io"},  # still a's: conflict
        {"userId": "a", "email": "a2@order.io"},  # a moves
        {"userId": "b", "email": "a@order.io"},  # now free
        {"userId": "c", "email": "a2@order.io"},  # a's new email: conflict
    ]))
    assert statuses(data["results"]) == ["failed:IDENTITY_CONFLICT", "updated", "created", "failed:IDENTITY_CONFLICT"]
    assert (await user_store.get_user(api.org, "b")).email == "a@order.io"


# -- the update merge ------------------------------------------------------------------------------


async def test_an_update_keeps_everything_the_row_does_not_mention(api: Api, user_store):
    custom = {"a": "one", "b": {"nested": [1, 2.5, None, True]}, "n": 12345678901234567, "s": "", "t": False}
    meta = {"m": "crm", "tags": ["x", "y"], "ü": "ñ"}
    ok_data(await api.import_users([{"userId": "merge", "email": "merge@example.com", "customFields": custom, "metadata": meta}]))
    created = await user_store.get_user(api.org, "merge")
    assert (created.custom_fields, created.metadata) == (custom, meta)

    data = ok_data(await api.import_users([{"userId": "merge", "customFields": {"a": "two"}}]))
    assert statuses(data["results"]) == ["updated"]
    stored = await user_store.get_user(api.org, "merge")
    assert stored.custom_fields == {**custom, "a": "two"}
    assert stored.metadata == meta
    assert stored.email == "merge@example.com"
    assert stored.created_at == created.created_at and stored.updated_at >= created.updated_at

    # By email, touching only metadata; then an empty object changes nothing.
    ok_data(await api.import_users([{"email": "MERGE@example.com", "metadata": {"tags": ["z"], "new": 1}}]))
    ok_data(await api.import_users([{"userId": "merge", "customFields": {}, "metadata": {}}]))
    stored = await user_store.get_user(api.org, "merge")
    assert stored.custom_fields == {**custom, "a": "two"}
    assert stored.metadata == {**meta, "tags": ["z"], "new": 1}
    assert stored.email == "MERGE@example.com"
