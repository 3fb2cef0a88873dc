"""The user store: one DynamoDB table, partition key `orgId`, sort key `key`.

Records there: `user#<userId>` (the user, as one JSON document in `doc`), `email#<lower-cased
email>` (the claim that makes an email unique within its org, naming `userId`), `census` (how
many user and claim records the org may hold: see `small_org`) and
`import#<jobId>` (welcome-email bookkeeping). Reads use BatchGetItem (100 keys a call,
strongly consistent); writes use BatchWriteItem, at most 25 items and never two for one key per
call, retrying what the store leaves unprocessed with exponential backoff and jitter.
"""
from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Iterable

import structlog
from botocore.exceptions import ClientError

from ..domain.model import DeleteEmailClaim, DeleteUser, PutEmailClaim, PutUser, StoredUser, Write, WriteMark
from .aws import UNREACHABLE, ServerUnavailable

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
MAX_WRITE_ATTEMPTS = 8

log = structlog.get_logger()


def user_key(org_id: str, user_id: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "key": {"S": f"user#{user_id}"}}


def email_key(org_id: str, email: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "key": {"S": f"email#{email}"}}


def census_key(org_id: str) -> dict[str, Any]:
    return {"orgId": {"S": org_id}, "key": {"S": "census"}}


# A user is stored as its keys plus one JSON document: the store's cost per write and per read
# grows with every attribute it must type-check and size (on the emulator, most of the import's
# time), and nothing reads the profile by attribute. Bump USER_DOC_VERSION if the document changes.
USER_DOC_VERSION = 1


def user_item(org_id: str, user: StoredUser) -> dict[str, Any]:
    doc = {
        "v": USER_DOC_VERSION,
        "userId": user.user_id,
        "email": user.email,
        "customFields": user.custom_fields,
        "metadata": user.metadata,
        "createdAt": user.created_at,
        "updatedAt": user.updated_at,
        "createdBy": [user.created_by.job_ref, user.created_by.row],
        "lastWrite": [user.last_write.job_ref, user.last_write.row],
    }
    return {**user_key(org_id, user.user_id), "doc": {"S": json.dumps(doc, ensure_ascii=False, separators=(",", ":"))}}


def stored_user(item: dict[str, Any]) -> StoredUser:
    doc = json.loads(item["doc"]["S"])
    return StoredUser(
        user_id=doc["userId"],
        email=doc["email"],
        custom_fields=doc["customFields"],
        metadata=doc["metadata"],
        created_at=doc["createdAt"],
        updated_at=doc["updatedAt"],
        created_by=WriteMark(*doc["createdBy"]),
        last_write=WriteMark(*doc["lastWrite"]),
    )


def write_request(org_id: str, write: Write) -> dict[str, Any]:
    match write:
        case PutUser(user=user):
            return {"PutRequest": {"Item": user_item(org_id, user)}}
        case PutEmailClaim(email_key=email, user_id=user_id):
            return {"PutRequest": {"Item": {**email_key(org_id, email), "userId": {"S": user_id}}}}
        case DeleteEmailClaim(email_key=email):
            return {"DeleteRequest": {"Key": email_key(org_id, email)}}
        case DeleteUser(user_id=user_id):
            return {"DeleteRequest": {"Key": user_key(org_id, user_id)}}
    raise TypeError(write)


def _request_key(request: dict[str, Any]) -> str:
    body = request.get("PutRequest", {}).get("Item") or request["DeleteRequest"]["Key"]
    return body["key"]["S"]


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class UserStore:
    def __init__(self, client: Any, table: str, endpoint: str | None, concurrency: int = 16, backoff_base: float = 0.05) -> None:
        self._client = client
        self.table = table
        self._endpoint = endpoint
        self._slots = asyncio.Semaphore(concurrency)
        self._backoff_base = backoff_base

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._slots:
                return await getattr(self._client, operation)(**kwargs)
        except UNREACHABLE as exc:
            raise ServerUnavailable("DynamoDB (user store)", self._endpoint, exc) from exc

    async def _backoff(self, attempt: int) -> None:
        # Full jitter: spread retries of concurrent batches so they do not collide again.
        await asyncio.sleep(random.uniform(0, self._backoff_base * 2**attempt))

    # -- reads -------------------------------------------------------------------------------------
    async def load(
        self, org_id: str, user_ids: Iterable[str], email_keys: Iterable[str]
    ) -> tuple[dict[str, StoredUser | None], dict[str, str | None]]:
        """Every named user and email claim; None for those that do not exist."""
        users: dict[str, StoredUser | None] = {u: None for u in user_ids}
        owners: dict[str, str | None] = {e: None for e in email_keys}
        keys = [user_key(org_id, u) for u in users] + [email_key(org_id, e) for e in owners]
        pages = await asyncio.gather(*(self._get_batch(page) for page in _chunks(keys, BATCH_GET_LIMIT)))
        for item in (item for page in pages for item in page):
            kind, _, name = item["key"]["S"].partition("#")
            if kind == "user":
                users[name] = stored_user(item)
            else:
                owners[name] = item["userId"]["S"]
        return users, owners

    async def small_org(self, org_id: str, limit: int) -> tuple[dict[str, StoredUser | None], dict[str, str | None]] | None:
        """Every user and email claim of the org when its census is at most `limit`, else None. An
        import into a new or small org then needs no per-chunk reads at all, and a new org costs
        one GetItem, not a Query (which the emulator answers by scanning the whole table).

        The census is raised before records are written (`count_new_records`) and never lowered,
        so 0 means the org holds nothing, and a census within the limit is at least what the org
        holds. Past the limit it is no longer kept exact: a large org is read per chunk anyway."""
        census = await self._call("get_item", TableName=self.table, Key=census_key(org_id), ConsistentRead=True)
        records = int(census["Item"]["records"]["N"]) if "Item" in census else 0
        if records > limit:
            return None
        users: dict[str, StoredUser | None] = {}
        owners: dict[str, str | None] = {}
        query = dict(
            TableName=self.table, KeyConditionExpression="orgId = :o", ExpressionAttributeValues={":o": {"S": org_id}},
            ConsistentRead=True,
        )
        page: dict[str, Any] = {"LastEvaluatedKey": None} if records else {}
        while "LastEvaluatedKey" in page:  # a query answers at most 1 MB a page: read every page
            start = {"ExclusiveStartKey": page["LastEvaluatedKey"]} if page["LastEvaluatedKey"] else {}
            page = await self._call("query", **query, **start)
            for item in page["Items"]:
                kind, _, name = item["key"]["S"].partition("#")
                if kind == "user":
                    users[name] = stored_user(item)
                elif kind == "email":
                    owners[name] = item["userId"]["S"]
        return users, owners

    async def count_new_records(self, org_id: str, new_records: int) -> int:
        """Raise the org's census before writing records that may be new; returns the new census.
        Counted before the write lands: a crash or a failed write can only make the org look
        larger (read per chunk), never smaller."""
        response = await self._call(
            "update_item", TableName=self.table, Key=census_key(org_id), UpdateExpression="ADD records :n",
            ExpressionAttributeValues={":n": {"N": str(new_records)}}, ReturnValues="UPDATED_NEW",
        )
        return int(response["Attributes"]["records"]["N"])

    async def _get_batch(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        request = {self.table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(MAX_WRITE_ATTEMPTS):
            response = await self._call("batch_get_item", RequestItems=request)
            found.extend(response.get("Responses", {}).get(self.table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            await self._backoff(attempt)
        raise RuntimeError(f"DynamoDB left {len(request[self.table]['Keys'])} keys unread after retries")

    # -- writes ------------------------------------------------------------------------------------
    async def write(self, org_id: str, writes: list[Write]) -> set[str]:
        """Apply the writes (at most one per key); return the keys whose write finally failed."""
        if not writes:
            return set()
        requests = [write_request(org_id, w) for w in writes]
        failed = await asyncio.gather(*(self._write_batch(batch) for batch in _chunks(requests, BATCH_WRITE_LIMIT)))
        return set().union(*failed)

    async def _write_batch(self, requests: list[dict[str, Any]]) -> set[str]:
        for attempt in range(MAX_WRITE_ATTEMPTS):
            try:
                response = await self._call("batch_write_item", RequestItems={self.table: requests})
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in ("ProvisionedThroughputExceededException", "ThrottlingException", "InternalServerError"):
                    if len(requests) > 1:
                        # The store rejects a whole batch for one bad item (too large, say): retry
                        # the items one by one so that only the bad one fails.
                        singles = await asyncio.gather(*(self._write_batch([r]) for r in requests))
                        return set().union(*singles)
                    log.warning("write rejected", error=str(exc), key=_request_key(requests[0]))
                    return {_request_key(requests[0])}
                response = {"UnprocessedItems": {self.table: requests}}
            requests = response.get("UnprocessedItems", {}).get(self.table, [])
            if not requests:
                return set()
            await self._backoff(attempt)
        return {_request_key(r) for r in requests}

    async def get_user(self, org_id: str, user_id: str) -> StoredUser | None:
        response = await self._call("get_item", TableName=self.table, Key=user_key(org_id, user_id), ConsistentRead=True)
        return stored_user(response["Item"]) if "Item" in response else None

    # -- welcome-email bookkeeping: which rows of an import already had their email requested ---------
    async def welcome_sent_through(self, org_id: str, job_ref: str) -> int:
        key = {"orgId": {"S": org_id}, "key": {"S": f"import#{job_ref}"}}
        response = await self._call("get_item", TableName=self.table, Key=key, ConsistentRead=True)
        return int(response["Item"]["welcomeSentThrough"]["N"]) if "Item" in response else -1

    async def mark_welcome_sent(self, org_id: str, job_ref: str, row: int) -> None:
        item = {"orgId": {"S": org_id}, "key": {"S": f"import#{job_ref}"}, "welcomeSentThrough": {"N": str(row)}}
        await self._call("put_item", TableName=self.table, Item=item)
