"""What ingest talks to: the user store (sync path), S3 (async path), Kafka (events)."""
from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from shared.adapters.aws import aws_client
from shared.adapters.event_bus import KafkaEventPublisher
from shared.adapters.object_store import ObjectStore
from shared.adapters.user_store import UserStore

from .settings import IngestSettings


@dataclass
class IngestAdapters:
    users: UserStore
    objects: ObjectStore
    events: KafkaEventPublisher


async def open_adapters(settings: IngestSettings, stack: AsyncExitStack, broker: KafkaBroker) -> IngestAdapters:
    dynamodb = await stack.enter_async_context(aws_client("dynamodb", settings))
    s3 = await stack.enter_async_context(aws_client("s3", settings))
    return IngestAdapters(
        users=UserStore(dynamodb, settings.users_table, settings.dynamodb_endpoint),
        objects=ObjectStore(s3, settings.bucket, settings.s3_endpoint),
        events=KafkaEventPublisher(broker),
    )
