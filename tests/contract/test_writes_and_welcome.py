"""Writes to the user store (25-item batches, one write per key, retries) and welcome emails,
through the importer's own handler in this process (so every BatchWriteItem call can be watched)."""
from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any, Callable

import pytest

from services.importer.handlers import handle_import_requested
from shared.domain.model import ImportOptions
from shared.events import ImportRequested

from ..conftest import Api, new_org
from ..integration.test_redelivery import welcome_events
from .conftest import ok_data, org_items, org_records, org_users


def import_event(org: str, users: list, **options: bool) -> ImportRequested:
    return ImportRequested(jobId=f"job_{uuid.uuid4()}", orgId=org, totalRecords=len(users), users=users, options=ImportOptions(**options))


def repeated_users() -> list[dict[str, Any]]:
    """1,000 rows: 200 users named 4 or 5 times, each time with a new email (so the old email claim
    is deleted and a new one put, sometimes in one chunk), then 50 email-only users twice each."""
    users: list[dict[str, Any]] = [
        {"userId": f"w{i % 200}", "email": f"w{i % 200}.{i // 200}@writes.io", "customFields": {"row": i}} for i in range(900)
    ]
    users += [{"email": f"E{j % 50}@Only.io" if j < 50 else f"e{j % 50}@only.io", "metadata": {"row": j}} for j in range(100)]
    return users


async def test_writes_go_in_batches_of_at_most_25_with_one_write_per_key(importer_adapters, user_store, batch_writes):
    org = new_org()
    final = await handle_import_requested(import_event(org, repeated_users()), importer_adapters, chunk_rows=250)
    assert final.eventType == "import.completed"
    assert final.counts.model_dump() == {"processed": 1000, "created": 250, "updated": 750, "skipped": 0, "failed": 0}
    batch_writes.assert_within_dynamodb_limits()
    ours = [keys for keys in batch_writes.calls if keys[0].startswith(org + "/")]
    assert sum(map(len, ours)) >= 500 and max(map(len, ours)) == 25  # batches are used, and filled
    # What is stored is what the rows say, applied in input order.
    items = await org_items(user_store, org)
    users = await org_users(user_store, org)
    claims = {i["key"]["S"]: i["userId"]["S"] for i in items if i["key"]["S"].startswith("email#")}
    assert len(users) == 250 and len(claims) == 250
    for k in range(200):
        last = k + 800 if k + 800 < 900 else k + 600
        email = f"w{k}.{last // 200}@writes.io"
        assert users[f"w{k}"].email == email
        assert claims[f"email#{email}"] == f"w{k}"
    assert sorted(k for k in claims if "only.io" in k) == sorted(f"email#e{j}@only.io" for j in range(50))


class UnprocessedWrites:
    """Makes the user store leave some items of a BatchWriteItem unprocessed, as DynamoDB does when
    it throttles: the other items are written for real. `policy(keys, attempt)` names the keys to
    leave out (`attempt`: how often the most-tried key of the call was sent before)."""

    def __init__(self, client, policy: Callable[[list[str], int], set[str]]) -> None:
        self.client, self.policy = client, policy
        self.attempts: dict[str, int] = {}
        self.calls: list[list[str]] = []
        self.outstanding: set[str] = set()  # reported unprocessed and not sent again yet
        self.resent_needlessly: list[str] = []  # keys sent again though they had been written

    def before(self, params: dict[str, Any], context: dict[str, Any], **_: Any):
        body = json.loads(params["body"])
        (table, requests), = body["RequestItems"].items()
        keys = [self._key(r) for r in requests]
        self.calls.append(keys)
        attempt = max(self.attempts.get(k, 0) for k in keys)
        for k in keys:
            if self.attempts.get(k, 0) and k not in self.outstanding:
                self.resent_needlessly.append(k)
            self.attempts[k] = self.attempts.get(k, 0) + 1
        left = self.policy(keys, attempt) & set(keys)
        self.outstanding = (self.outstanding - set(keys)) | left
        if not left:
            return None
        kept = [r for r, k in zip(requests, keys) if k not in left]
        unprocessed = [r for r, k in zip(requests, keys) if k in left]
        if not kept:
            return SimpleNamespace(status_code=200, headers={}), {"UnprocessedItems": {table: unprocessed}}
        params["body"] = json.dumps({**body, "RequestItems": {table: kept}}).encode()
        context["test_unprocessed"] = (table, unprocessed)
        return None

    def after(self, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if "test_unprocessed" in context:
            table, unprocessed = context.pop("test_unprocessed")
            parsed.setdefault("UnprocessedItems", {}).setdefault(table, []).extend(unprocessed)

    @staticmethod
    def _key(request: dict[str, Any]) -> str:
        body = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
        return body["key"]["S"]

    def __enter__(self) -> "UnprocessedWrites":
        self.client.meta.events.register_first("before-call.dynamodb.BatchWriteItem", self.before)
        self.client.meta.events.register_first("after-call.dynamodb.BatchWriteItem", self.after)
        return self

    def __exit__(self, *_: Any) -> None:
        self.client.meta.events.unregister("before-call.dynamodb.BatchWriteItem", self.before)
        self.client.meta.events.unregister("after-call.dynamodb.BatchWriteItem", self.after)


@pytest.fixture
def backoff_bounds(monkeypatch) -> list[tuple[float, float]]:
    """Each backoff the store draws: (low, high) of its random wait; waits are made 0 for speed."""
    import random

    drawn: list[tuple[float, float]] = []
    monkeypatch.setattr(random, "uniform", lambda low, high: drawn.append((low, high)) or 0.0)
    return drawn


async def test_unprocessed_items_are_retried_until_written(importer_adapters, user_store, backoff_bounds):
    org = new_org()
    users = [{"userId": f"t{i}", "email": f"t{i}@throttle.io"} for i in range(60)]

    def throttle(keys: list[str], attempt: int) -> set[str]:
        # First sending: every other item is left over; second: all that is left; then accepted.
        return set(keys[::2]) if attempt == 0 else set(keys) if attempt == 1 else set()

    with UnprocessedWrites(user_store._client, throttle) as store:
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.counts.model_dump() == {"processed": 60, "created": 60, "updated": 0, "skipped": 0, "failed": 0}
    assert len(await org_records(user_store, org)) == 120  # 60 users, 60 email claims
    assert all(len(keys) <= 25 for keys in store.calls)
    # Every item left over was sent again (twice) until written; none that had been written was.
    assert sorted(set(store.attempts.values())) == [1, 3] and store.outstanding == set()
    assert store.resent_needlessly == []
    assert backoff_bounds and all(low == 0 for low, _ in backoff_bounds)  # full jitter


async def test_a_write_the_store_never_accepts_fails_its_rows_with_write_failed(importer_adapters, user_store, backoff_bounds):
    org = new_org()
    users = [{"userId": f"d{i}", "customFields": {"i": i}} for i in range(40)]
    users[7] = {"userId": "doomed", "email": "doomed@never.io"}
    users[30] = {"userId": "doomed", "customFields": {"again": True}}  # depends on the same write

    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"user#doomed"}) as store:
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.eventType == "import.completed"
    assert final.counts.model_dump() == {"processed": 40, "created": 38, "updated": 0, "skipped": 0, "failed": 2}
    results = [json.loads(line) for line in (await importer_adapters.objects.get_bytes(final.resultsLocation)).decode().splitlines()]
    assert [(r["index"], r["error"]["code"]) for r in results if r["status"] == "failed"] == [(7, "WRITE_FAILED"), (30, "WRITE_FAILED")]
    assert await user_store.get_user(org, "doomed") is None and await user_store.get_user(org, "d39") is not None
    # README: 8 attempts; every retry resends only the item left over; exponential backoff with full jitter.
    doomed_calls = [keys for keys in store.calls if "user#doomed" in keys]
    assert len(doomed_calls) == 8 and all(keys == ["user#doomed"] for keys in doomed_calls[1:])
    # The only key written twice is the email claim of the failed user: claimed, then released again,
    # so that the failed row leaves nothing behind.
    assert store.resent_needlessly == ["email#doomed@never.io"]
    assert (await user_store.load(org, [], ["doomed@never.io"]))[1] == {"doomed@never.io": None}
    highs = [high for low, high in backoff_bounds]
    assert all(low == 0 for low, _ in backoff_bounds) and len(highs) >= 7
    assert all(later == 2 * earlier for earlier, later in zip(highs, highs[1:])), highs


# -- welcome emails --------------------------------------------------------------------------------


async def test_one_welcome_email_per_created_user_with_an_email_and_none_twice(system, importer_adapters, endpoints):
    api = Api(system, new_org())
    try:
        ok_data(await api.import_users([{"userId": "w-old", "email": "old@welcome.io"}, {"userId": "w-quiet", "email": "quiet@welcome.io"}]))
        users: list[Any] = [
            {"userId": "w1", "email": "w1@welcome.io"},  # created with an email: one
            {"userId": "w2"},  # created without an email: none
            {"email": "w3@welcome.io"},  # created by email: one
            {"userId": "w-old", "customFields": {"x": 1}},  # updated: none
            {"userId": "w1", "customFields": {"again": 1}},  # created above, updated here: still one
            {"userId": "w5", "email": "not-an-email"},  # failed: none
            {"userId": "w6", "email": "OLD@welcome.io"},  # IDENTITY_CONFLICT: none
        ]
        users += [{"userId": f"bulk{i}", "email": f"bulk{i}@welcome.io"} for i in range(293)]  # several chunks
        event = import_event(api.org, users, sendWelcomeEmail=True)
        first = await handle_import_requested(event, importer_adapters, chunk_rows=100)
        again = await handle_import_requested(event, importer_adapters, chunk_rows=100)  # the message, delivered twice
        assert first.counts == again.counts
        assert (first.counts.created, first.counts.updated, first.counts.failed) == (296, 2, 2)

        skipped = import_event(api.org, users[:3] + [{"userId": "w-quiet"}], sendWelcomeEmail=True, skipDuplicates=True)
        assert (await handle_import_requested(skipped, importer_adapters, chunk_rows=100)).counts.skipped == 4
        # The synchronous path asks too (and only for its created users).
        sync = ok_data(await api.import_users([{"userId": "s1", "email": "s1@welcome.io"}, {"userId": "w2", "email": "w2@welcome.io"}], sendWelcomeEmail=True))
        assert [r["status"] for r in sync["results"]] == ["created", "updated"]

        w3 = (await user_store_of(importer_adapters).load(api.org, [], ["w3@welcome.io"]))[1]["w3@welcome.io"]
        expected = {"w1": "w1@welcome.io", w3: "w3@welcome.io", "s1": "s1@welcome.io"} | {f"bulk{i}": f"bulk{i}@welcome.io" for i in range(293)}
        events = await welcome_events(endpoints, api.org, expect_at_least=len(expected))
        assert sorted(e["userId"] for e in events) == sorted(expected)  # each exactly once
        assert {e["userId"]: e["email"] for e in events} == expected
        assert {e["jobId"] for e in events if e["userId"] != "s1"} == {event.jobId}
        assert all(e["eventType"] == "user.welcome_email.requested" and e["schemaVersion"] == 1 for e in events)
        assert len({e["eventId"] for e in events}) == len(events)
    finally:
        await api.close()


def user_store_of(adapters):
    return adapters.users


@pytest.mark.parametrize("later_row", [10, 29], ids=["next chunk, whose writes would overlap", "two chunks later"])
async def test_after_a_failed_write_later_rows_still_see_the_stored_user(importer_adapters, user_store, later_row):
    """The write of row 0 never lands; a later row (in another chunk) updates the same existing user:
    it must merge into what is stored, not into what the failed write would have stored. The next
    chunk is applied while row 0's chunk is still being written, unless it depends on its keys."""
    org = new_org()
    seed = await handle_import_requested(import_event(org, [{"userId": "keep", "customFields": {"keep": 1}, "metadata": {"m": 1}}]),
                                         importer_adapters, chunk_rows=250)
    assert seed.counts.created == 1
    users = [{"userId": "keep", "customFields": {"lost": 1}}] + [{"userId": f"f{i}"} for i in range(28)]
    users.insert(later_row, {"userId": "keep", "customFields": {"x": 1}})
    refusals = {"left": 8}  # every attempt of the first write of user#keep

    def refuse(keys, attempt):
        if "user#keep" in keys and refusals["left"] > 0:
            refusals["left"] -= 1
            return {"user#keep"}
        return set()

    with UnprocessedWrites(user_store._client, refuse):
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=10)
    results = [json.loads(line) for line in (await importer_adapters.objects.get_bytes(final.resultsLocation)).decode().splitlines()]
    assert (results[0]["status"], results[0]["error"]["code"]) == ("failed", "WRITE_FAILED")
    assert results[later_row]["status"] == "updated"
    stored = await user_store.get_user(org, "keep")
    assert stored.custom_fields == {"keep": 1, "x": 1} and stored.metadata == {"m": 1}
    assert stored.created_by.job_ref == seed.jobId


async def test_a_new_user_whose_email_claim_never_lands_is_taken_back(importer_adapters, user_store):
    """New users and their email claims are written in one round; if the claim fails, the user
    written beside it is removed again, so the store never holds a user whose email nobody claims."""
    org = new_org()
    users = [{"userId": "lost", "email": "lost@claim.io"}] + [{"userId": f"k{i}", "email": f"k{i}@claim.io"} for i in range(30)]
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"email#lost@claim.io"}):
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.counts.model_dump() == {"processed": 31, "created": 30, "updated": 0, "skipped": 0, "failed": 1}
    assert await user_store.get_user(org, "lost") is None
    assert (await user_store.load(org, ["k29"], ["k29@claim.io"]))[1] == {"k29@claim.io": "k29"}


async def test_undoing_a_claim_gives_it_back_to_its_previous_holder(importer_adapters, user_store):
    """x moves from a to b and back to a in one chunk, and x's write never lands: the claim on a
    must still be x's afterwards (not deleted), and b stays free."""
    org = new_org()
    await handle_import_requested(import_event(org, [{"userId": "x", "email": "a@undo.io"}]), importer_adapters, chunk_rows=250)
    users = [{"userId": "x", "email": "b@undo.io"}, {"userId": "x", "email": "a@undo.io"}]
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"user#x"}):
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.counts.failed == 2
    assert (await user_store.get_user(org, "x")).email == "a@undo.io"
    assert (await user_store.load(org, [], ["a@undo.io", "b@undo.io"]))[1] == {"a@undo.io": "x", "b@undo.io": None}


async def test_a_new_user_taking_an_email_another_gives_up_fails_with_it(importer_adapters, user_store):
    """a gives up e for f and the new user b takes e, in one chunk; a's claim on f never lands. a
    keeps e, so b cannot have it: both rows fail, and the store is as before the chunk (one user
    per email, every claim naming its user)."""
    org = new_org()
    await handle_import_requested(import_event(org, [{"userId": "a", "email": "e@trade.io"}]), importer_adapters, chunk_rows=250)
    users = [{"userId": "a", "email": "f@trade.io"}, {"userId": "b", "email": "e@trade.io"}, {"userId": "c", "email": "c@trade.io"}]
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"email#f@trade.io"}):
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    results = [json.loads(line) for line in (await importer_adapters.objects.get_bytes(final.resultsLocation)).decode().splitlines()]
    assert [(r["status"], r.get("error", {}).get("code")) for r in results] == [
        ("failed", "WRITE_FAILED"), ("failed", "WRITE_FAILED"), ("created", None)
    ]
    assert (await user_store.get_user(org, "a")).email == "e@trade.io" and await user_store.get_user(org, "b") is None
    claims = (await user_store.load(org, [], ["e@trade.io", "f@trade.io", "c@trade.io"]))[1]
    assert claims == {"e@trade.io": "a", "f@trade.io": None, "c@trade.io": "c"}


async def test_an_existing_users_change_that_landed_is_put_back_when_a_row_it_depends_on_fails(importer_adapters, user_store):
    """a gives up e for f, and the existing user b gives up g to take e; b's write never lands,
    after a's has. a's row fails with b's (b cannot take e, so a must not have given it up): a is
    put back as it was, with its claim on e, and f and g are as before."""
    org = new_org()
    seed = [{"userId": "a", "email": "e@back.io", "customFields": {"v": 1}}, {"userId": "b", "email": "g@back.io"}]
    await handle_import_requested(import_event(org, seed), importer_adapters, chunk_rows=250)
    users = [{"userId": "a", "email": "f@back.io", "customFields": {"v": 2}}, {"userId": "b", "email": "e@back.io"}]
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"user#b"}) as store:
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.counts.failed == 2
    assert "user#a" in store.resent_needlessly  # a's change landed, then was put back
    a, b = await user_store.get_user(org, "a"), await user_store.get_user(org, "b")
    assert (a.email, a.custom_fields, b.email) == ("e@back.io", {"v": 1}, "g@back.io")
    claims = (await user_store.load(org, [], ["e@back.io", "f@back.io", "g@back.io"]))[1]
    assert claims == {"e@back.io": "a", "f@back.io": None, "g@back.io": "b"}


async def test_a_user_whose_put_back_is_refused_keeps_the_claim_on_its_new_email(importer_adapters, user_store):
    """u1 gives e1 up for e2 and u2 takes e1; u2's write never lands, and neither does putting u1
    back. u1 then keeps e2 (its rows still fail: the known limit), and the claim on e2 must go on
    naming u1, or a later import could give e2 to another user."""
    org = new_org()
    seed = [{"userId": "u1", "email": "e1@refused.io"}, {"userId": "u2", "email": "e3@refused.io"}]
    await handle_import_requested(import_event(org, seed), importer_adapters, chunk_rows=250)
    users = [{"userId": "u1", "email": "e2@refused.io"}, {"userId": "u2", "email": "e1@refused.io"}]
    # u2 never; u1 only the first time (its own write), not when it is sent again to be put back.
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"user#u2"} | ({"user#u1"} if attempt >= 1 else set())):
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    assert final.counts.failed == 2
    assert (await user_store.get_user(org, "u1")).email == "e2@refused.io"
    assert (await user_store.get_user(org, "u2")).email == "e3@refused.io"
    claims = (await user_store.load(org, [], ["e2@refused.io", "e3@refused.io"]))[1]
    assert claims == {"e2@refused.io": "u1", "e3@refused.io": "u2"}
    later = await handle_import_requested(import_event(org, [{"userId": "u7", "email": "E2@refused.io"}]), importer_adapters, chunk_rows=250)
    assert later.counts.failed == 1


async def test_a_small_org_larger_than_one_query_page_is_read_whole(importer_adapters, user_store):
    """An org of few but large records (over DynamoDB's 1 MB query page): whichever way the org is
    read (whole, following every page, or per chunk when the sizing query is cut at 1 MB), existing
    users must never be taken for new ones and overwritten."""
    org = new_org()
    big = "x" * 6000
    seed = [{"userId": f"b{i}", "customFields": {"blob": big, "i": i}} for i in range(300)]
    assert (await handle_import_requested(import_event(org, seed), importer_adapters, chunk_rows=250)).counts.created == 300
    again = [{"userId": f"b{i}", "metadata": {"seen": 2}} for i in range(300)]
    final = await handle_import_requested(import_event(org, again), importer_adapters, chunk_rows=250)
    assert (final.counts.created, final.counts.updated) == (0, 300)
    stored = await user_store.get_user(org, "b299")
    assert stored.custom_fields == {"blob": big, "i": 299} and stored.metadata == {"seen": 2}


async def test_a_release_that_never_lands_keeps_the_rows_change_and_frees_the_email(importer_adapters, user_store):
    """x changes its email from a to b and the delete of the old claim on a never lands: x's change
    is stored, so the row is `updated`; the stale claim on a does not block another user."""
    org = new_org()
    await handle_import_requested(import_event(org, [{"userId": "x", "email": "a@stale.io"}]), importer_adapters, chunk_rows=250)
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"email#a@stale.io"}):
        final = await handle_import_requested(import_event(org, [{"userId": "x", "email": "b@stale.io"}]), importer_adapters, chunk_rows=250)
    assert (final.counts.updated, final.counts.failed) == (1, 0)
    assert (await user_store.get_user(org, "x")).email == "b@stale.io"
    taken = await handle_import_requested(import_event(org, [{"userId": "y", "email": "A@stale.io"}]), importer_adapters, chunk_rows=250)
    assert (taken.counts.created, taken.counts.failed) == (1, 0)
    assert (await user_store.load(org, [], ["a@stale.io"]))[1] == {"a@stale.io": "y"}


async def census(user_store, org: str) -> int:
    item = (await user_store._client.get_item(TableName=user_store.table, Key={"orgId": {"S": org}, "key": {"S": "census"}}, ConsistentRead=True)).get("Item")
    return int(item["records"]["N"]) if item else 0


async def test_the_census_never_understates_the_org(importer_adapters, user_store):
    """The census decides whether an import reads the org whole (at 0: not at all, the org is taken
    for empty) or per chunk. Through new users, email changes and a claim that never lands, a
    census within the small-org limit is never below what the org holds."""
    org = new_org()
    first = import_event(org, [{"userId": f"c{i}", "email": f"c{i}@census.io"} for i in range(120)] + [{"email": "only@census.io"}])
    await handle_import_requested(first, importer_adapters, chunk_rows=50)
    assert await census(user_store, org) == len(await org_records(user_store, org)) == 242
    moves = [{"userId": f"c{i}", "email": f"c{i}.new@census.io"} for i in range(60)] + [{"userId": "lost", "email": "lost@census.io"}]
    with UnprocessedWrites(user_store._client, lambda keys, attempt: {"email#lost@census.io"}):
        await handle_import_requested(import_event(org, moves), importer_adapters, chunk_rows=50)
    again = import_event(org, [{"userId": f"n{i}", "email": f"n{i}@census.io"} for i in range(40)])
    await handle_import_requested(again, importer_adapters, chunk_rows=50)
    records = len(await org_records(user_store, org))
    assert records == 242 + 80  # the moves swap claims; "lost" was taken back; 40 new users and claims
    assert await census(user_store, org) >= records


async def test_an_import_into_a_new_org_makes_no_query_and_reads_nothing(importer_adapters, user_store):
    """A new org is known empty from its census (one GetItem): no Query (which the emulator answers
    by scanning the whole table) and no per-chunk reads. The census is raised before each chunk's
    writes until it is past the small-org limit, and then left alone: it can only grow."""
    org = new_org()
    calls: list[str] = []

    def watch(model, **_: Any) -> None:
        calls.append(model.name)

    users = [{"userId": f"q{i}", "email": f"q{i}@new.io"} for i in range(1300)]  # 6 chunks of 500, 500, ... 100 records
    events = user_store._client.meta.events
    events.register("before-call.dynamodb", watch)
    try:
        final = await handle_import_requested(import_event(org, users), importer_adapters, chunk_rows=250)
    finally:
        events.unregister("before-call.dynamodb", watch)
    assert final.counts.created == 1300
    assert "Query" not in calls and "BatchGetItem" not in calls, sorted(set(calls))
    assert calls.count("BatchWriteItem") == 5 * 20 + 4 and calls.count("GetItem") == 1
    assert calls.count("UpdateItem") == 5 and await census(user_store, org) == 2500  # past 2,000 after the 5th chunk
    again = await handle_import_requested(import_event(org, users[:300]), importer_adapters, chunk_rows=250)
    assert (again.counts.created, again.counts.updated) == (0, 300)
