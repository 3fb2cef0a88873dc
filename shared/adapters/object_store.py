"""The job objects in S3: each import's users (`requests/`), its row-level results (`results/`) and,
while it runs, the outcomes of its finished chunks (`results/<orgId>/<jobId>.chunks/`), all under
the org's prefix so one org's objects are never named by another's job."""
from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import ClientError

from ..domain.user_import import RowOutcome
from ..events import ObjectLocation
from .aws import UNREACHABLE, ServerUnavailable

RETENTION_DAYS = 30


def request_prefix(org_id: str) -> str:
    return f"requests/{org_id}/"


def request_key(org_id: str, job_id: str) -> str:
    return f"{request_prefix(org_id)}{job_id}.json"


def results_key(org_id: str, job_id: str) -> str:
    return f"results/{org_id}/{job_id}.jsonl"


def chunk_log_prefix(org_id: str, job_id: str) -> str:
    return f"results/{org_id}/{job_id}.chunks/"


class ObjectStore:
    def __init__(self, client: Any, bucket: str, endpoint: str | None) -> None:
        self._client = client
        self.bucket = bucket
        self._endpoint = endpoint

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, operation)(**kwargs)
        except UNREACHABLE as exc:
            raise ServerUnavailable("S3", self._endpoint, exc) from exc

    async def put(self, key: str, body: bytes, content_type: str, metadata: dict[str, str] | None = None) -> ObjectLocation:
        await self._call("put_object", Bucket=self.bucket, Key=key, Body=body, ContentType=content_type, Metadata=metadata or {})
        return ObjectLocation(bucket=self.bucket, key=key)

    async def delete(self, location: ObjectLocation) -> None:
        await self._call("delete_object", Bucket=location.bucket, Key=location.key)

    async def get_bytes(self, location: ObjectLocation) -> bytes:
        response = await self._call("get_object", Bucket=location.bucket, Key=location.key)
        async with response["Body"] as body:
            return await body.read()

    async def get_json(self, location: ObjectLocation) -> Any:
        return json.loads(await self.get_bytes(location))

    async def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        page: dict[str, Any] = {"NextContinuationToken": None}
        while "NextContinuationToken" in page:
            token = {"ContinuationToken": page["NextContinuationToken"]} if page["NextContinuationToken"] else {}
            page = await self._call("list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            found += [o["Key"] for o in page.get("Contents", [])]
        return found

    async def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            await self._call("delete_objects", Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    async def metadata(self, key: str) -> dict[str, str] | None:
        """The object's user metadata, or None when it does not exist."""
        try:
            response = await self._call("head_object", Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return response.get("Metadata", {})

    async def presigned_get(self, location: ObjectLocation, expires_in: int) -> str:
        return await self._client.generate_presigned_url(
            "get_object", Params={"Bucket": location.bucket, "Key": location.key}, ExpiresIn=expires_in
        )


class JobChunkLog:
    """The outcomes of an import's finished chunks, one object per chunk, kept until the results
    file is written. A re-delivered import replays them instead of applying those rows again, so
    it reports exactly what the first delivery decided, whatever later rows did since."""

    def __init__(self, objects: ObjectStore, org_id: str, job_id: str) -> None:
        self._objects = objects
        self._prefix = chunk_log_prefix(org_id, job_id)

    def _key(self, rows: range) -> str:
        return f"{self._prefix}{rows.start}-{rows.stop}.jsonl"

    async def recorded(self) -> dict[range, list[RowOutcome]]:
        keys = await self._objects.keys(self._prefix)
        bodies = await asyncio.gather(*(self._objects.get_bytes(ObjectLocation(bucket=self._objects.bucket, key=k)) for k in keys))
        recorded = {}
        for key, body in zip(keys, bodies):
            start, _, stop = key.removeprefix(self._prefix).removesuffix(".jsonl").partition("-")
            recorded[range(int(start), int(stop))] = [RowOutcome.from_record(json.loads(line)) for line in body.decode().splitlines()]
        return recorded

    async def record(self, rows: range, outcomes: list[RowOutcome]) -> None:
        lines = "".join(json.dumps(o.as_record(), ensure_ascii=False) + "\n" for o in outcomes)
        await self._objects.put(self._key(rows), lines.encode(), "application/x-ndjson")

    async def clear(self) -> None:
        await self._objects.delete_keys(await self._objects.keys(self._prefix))
