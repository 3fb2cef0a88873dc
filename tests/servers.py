"""Where the tests get real servers, in this order:
1. endpoints given in the environment (BULKOPS_KAFKA_BOOTSTRAP, BULKOPS_MONGO_URI, BULKOPS_S3_ENDPOINT,
   BULKOPS_DYNAMODB_ENDPOINT, AWS_*);
2. Docker through testcontainers, when BULKOPS_TEST_SERVERS=docker (needs a Docker engine);
3. the project's embedded stack (the default: no Docker needed).
"""
from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from bulkops.stack import EmbeddedStack, Endpoints, endpoints_from_env


@contextmanager
def docker_servers() -> Iterator[Endpoints]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer
    from testcontainers.minio import MinioContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer().with_kraft())
        mongo = stack.enter_context(MongoDbContainer("mongo:7").with_command("--replSet rs0 --bind_ip_all"))
        mongo.exec(["mongosh", "--quiet", "--eval", "rs.initiate()"])
        s3 = stack.enter_context(MinioContainer())
        dynamodb = stack.enter_context(DockerContainer("amazon/dynamodb-local:2.6.1").with_exposed_ports(8000))
        wait_for_logs(dynamodb, "CorsParams")
        yield Endpoints(
            kafka_bootstrap=kafka.get_bootstrap_server(),
            mongo_uri=f"mongodb://{mongo.get_container_host_ip()}:{mongo.get_exposed_port(27017)}/?directConnection=true",
            s3_endpoint=f"http://{s3.get_container_host_ip()}:{s3.get_exposed_port(9000)}",
            dynamodb_endpoint=f"http://{dynamodb.get_container_host_ip()}:{dynamodb.get_exposed_port(8000)}",
            aws_access_key_id=s3.access_key, aws_secret_access_key=s3.secret_key, aws_region="us-east-1",
        )


@contextmanager
def test_servers(workdir: Path) -> Iterator[Endpoints]:
    given = endpoints_from_env()
    if given is not None:
        yield given
    elif os.environ.get("BULKOPS_TEST_SERVERS") == "docker":
        with docker_servers() as endpoints:
            yield endpoints
    else:
        with EmbeddedStack(workdir) as stack:
            yield stack.endpoints
