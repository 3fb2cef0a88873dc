"""aioboto3 clients for S3 and DynamoDB, and naming the server when it cannot be reached."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import aioboto3
from aiobotocore.config import AioConfig
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

from ..settings import CommonSettings

UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, BotoConnectionError, OSError)


class ServerUnavailable(Exception):
    """A server bulkops depends on did not answer. The message names it and where it was looked for."""

    def __init__(self, server: str, endpoint: str | None, cause: BaseException | None = None) -> None:
        where = endpoint or "its default AWS endpoint"
        detail = f": {cause}" if cause else ""
        super().__init__(f"{server} is not reachable at {where}{detail}")
        self.server = server


@asynccontextmanager
async def aws_client(service: str, settings: CommonSettings, max_pool: int = 32) -> AsyncIterator[object]:
    endpoint = settings.s3_endpoint if service == "s3" else settings.dynamodb_endpoint
    config = AioConfig(
        max_pool_connections=max_pool,
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": 3, "mode": "standard"},
        # Client-side validation of every nested attribute costs more CPU than the request itself on
        # 25-item batches; the server validates anyway.
        parameter_validation=False,
        signature_version="s3v4" if service == "s3" else None,
        s3={"addressing_style": "path"} if service == "s3" else None,
    )
    async with aioboto3.Session().client(
        service, endpoint_url=endpoint, region_name=settings.aws_region, config=config,
        aws_access_key_id=settings.aws_access_key_id, aws_secret_access_key=settings.aws_secret_access_key,
    ) as client:
        yield client
