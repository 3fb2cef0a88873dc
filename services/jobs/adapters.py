"""What the jobs service talks to: MongoDB (the job view) and S3 (request metadata, result links)."""
from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from shared.adapters.aws import ServerUnavailable, aws_client
from shared.adapters.object_store import ObjectStore

from .settings import JobsSettings
from .views import JobViews


@dataclass
class JobsAdapters:
    views: JobViews
    objects: ObjectStore


async def open_adapters(settings: JobsSettings, stack: AsyncExitStack) -> JobsAdapters:
    mongo: AsyncMongoClient = AsyncMongoClient(settings.mongo_uri, serverSelectionTimeoutMS=5000)
    stack.push_async_callback(mongo.close)
    try:
        await mongo.admin.command("ping")
    except PyMongoError as exc:
        raise ServerUnavailable("MongoDB", settings.mongo_uri, exc) from exc
    s3 = await stack.enter_async_context(aws_client("s3", settings))
    return JobsAdapters(views=JobViews(mongo[settings.mongo_db]["jobs"], settings.mongo_uri), objects=ObjectStore(s3, settings.bucket, settings.s3_endpoint))
