"""Publishing bulkops events on Kafka: each event type to its topic, keyed by jobId (or userId)."""
from __future__ import annotations

from faststream.kafka import KafkaBroker

from ..events import Event, Topics


def topic_of(event: Event) -> str:
    topic = getattr(event, "eventType", None)
    if topic not in Topics.ALL:
        raise ValueError(f"no topic for {type(event).__name__}")
    return topic


def key_of(event: Event) -> bytes:
    key = getattr(event, "jobId", None) if topic_of(event) != Topics.WELCOME_EMAIL_REQUESTED else getattr(event, "userId")
    return str(key).encode()


class KafkaEventPublisher:
    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker

    async def publish(self, event: Event) -> None:
        await self._broker.publish(event.model_dump_json().encode(), topic=topic_of(event), key=key_of(event), headers={"content-type": "application/json"})
