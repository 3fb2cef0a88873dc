"""The job objects in S3: each import's users (`requests/`) and its row-level results (`results/`),
both under the org's prefix so one org's objects are never named by another's job."""
from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from ..events import ObjectLocation
from .aws import UNREACHABLE, ServerUnavailable

RETENTION_DAYS = 30


def request_prefix(org_id: str) -> str:
    return f"requests/{org_id}/"


def request_key(org_id: str, job_id: str) -> str:
    return f"{request_prefix(org_id)}{job_id}.json"


def results_key(org_id: str, job_id: str) -> str:
    return f"results/{org_id}/{job_id}.jsonl"


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
