"""Creating what the services expect to exist: topics, the bucket and its 30-day lifecycle rule,
the user table, the job view's indexes. Idempotent; run by the launcher and by deployments."""
from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from botocore.exceptions import ClientError
from pymongo import AsyncMongoClient

from .adapters.aws import aws_client
from .adapters.object_store import RETENTION_DAYS
from .events import Topics
from .settings import CommonSettings

JOB_TOPIC_PARTITIONS = 8  # import.requested: how many importers can work at once


async def create_topics(settings: CommonSettings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(t, JOB_TOPIC_PARTITIONS if t == Topics.IMPORT_REQUESTED else 4, 1)
            for t in Topics.ALL
            if t not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()


async def create_bucket(settings: CommonSettings) -> None:
    async with aws_client("s3", settings) as s3:
        try:
            await s3.create_bucket(Bucket=settings.bucket)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        await s3.put_bucket_lifecycle_configuration(
            Bucket=settings.bucket,
            LifecycleConfiguration={
                "Rules": [
                    {"ID": f"{prefix.rstrip('/')}-expire-{RETENTION_DAYS}d", "Status": "Enabled", "Filter": {"Prefix": prefix},
                     "Expiration": {"Days": RETENTION_DAYS}}
                    for prefix in ("requests/", "results/")
                ]
            },
        )


async def create_user_table(settings: CommonSettings) -> None:
    async with aws_client("dynamodb", settings) as dynamodb:
        try:
            await dynamodb.create_table(
                TableName=settings.users_table,
                KeySchema=[{"AttributeName": "orgId", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
                AttributeDefinitions=[{"AttributeName": "orgId", "AttributeType": "S"}, {"AttributeName": "key", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceInUseException":
                raise


async def create_job_view_indexes(settings: CommonSettings) -> None:
    client: AsyncMongoClient = AsyncMongoClient(settings.mongo_uri)
    try:
        jobs = client[settings.mongo_db]["jobs"]
        # TTL: MongoDB deletes a job's view once `expiresAt` (createdAt + 30 days) has passed.
        await jobs.create_index("expiresAt", expireAfterSeconds=0, name="jobs_ttl")
        await jobs.create_index([("orgId", 1), ("createdAt", -1)], name="jobs_by_org")
    finally:
        await client.close()


async def provision(settings: CommonSettings) -> None:
    await asyncio.gather(
        create_topics(settings), create_bucket(settings), create_user_table(settings), create_job_view_indexes(settings)
    )
