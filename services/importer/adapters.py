"""What the importer talks to: S3 (users in, results out), the user store, Kafka (events out)."""
from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from shared.adapters.aws import aws_client
from shared.adapters.event_bus import KafkaEventPublisher
from shared.adapters.object_store import ObjectStore
from shared.adapters.user_store import UserStore

from .settings import ImporterSettings


@dataclass
class ImporterAdapters:
    users: UserStore
    objects: ObjectStore
    events: KafkaEventPublisher


async def open_adapters(settings: ImporterSettings, stack: AsyncExitStack, broker: KafkaBroker) -> ImporterAdapters:
    dynamodb = await stack.enter_async_context(aws_client("dynamodb", settings, max_pool=settings.write_concurrency * 2))
    s3 = await stack.enter_async_context(aws_client("s3", settings))
    return ImporterAdapters(
        users=UserStore(dynamodb, settings.users_table, settings.dynamodb_endpoint, concurrency=settings.write_concurrency),
        objects=ObjectStore(s3, settings.bucket, settings.s3_endpoint),
        events=KafkaEventPublisher(broker),
    )
