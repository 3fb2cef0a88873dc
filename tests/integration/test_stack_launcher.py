"""The embedded stack launcher starts four real servers, and stops them."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient

try:
    import bulkops.stack  # noqa: F401
except ModuleNotFoundError:  # not installed (pip install -e .) and not on pythonpath
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bulkops import stack as stack_mod
from bulkops.stack import EmbeddedStack, Endpoints, ServerStartError

pytestmark = [
    pytest.mark.skipif(
        not (sys.platform == "linux" and platform.machine() == "x86_64"),
        reason="the embedded stack's server wheels are x86_64 Linux only",
    ),
    pytest.mark.timeout(180),
]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _boto(service: str, endpoint: str, ep: Endpoints):
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        aws_access_key_id=ep.aws_access_key_id,
        aws_secret_access_key=ep.aws_secret_access_key,
        region_name=ep.aws_region,
    )


async def _kafka_roundtrip(bootstrap: str) -> None:
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello", key=b"k1")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), timeout=20)
    finally:
        await consumer.stop()
    assert (msg.key, msg.value) == (b"k1", b"hello")


async def _mongo_roundtrip(uri: str) -> None:
    client = AsyncMongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        coll = client["stacktest"]["things"]
        await coll.insert_one({"_id": "a", "n": 1})
        assert await coll.find_one({"_id": "a"}) == {"_id": "a", "n": 1}
        hello = await client.admin.command("hello")
        assert hello["setName"] == "rs0" and hello["isWritablePrimary"]
    finally:
        await client.close()


def _s3_roundtrip(ep: Endpoints, bucket: str) -> None:
    s3 = _boto("s3", ep.s3_endpoint, ep)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/obj.txt", Body=b"payload")
    assert s3.get_object(Bucket=bucket, Key="dir/obj.txt")["Body"].read() == b"payload"


def _dynamodb_roundtrip(ep: Endpoints) -> None:
    ddb = _boto("dynamodb", ep.dynamodb_endpoint, ep)
    ddb.create_table(
        TableName="stack-test",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="stack-test", Item={"pk": {"S": "x"}, "v": {"N": "7"}})
    item = ddb.get_item(TableName="stack-test", Key={"pk": {"S": "x"}}, ConsistentRead=True)
    assert item["Item"] == {"pk": {"S": "x"}, "v": {"N": "7"}}


async def test_stack_servers_answer_and_stop(tmp_path: Path) -> None:
    stack = EmbeddedStack(tmp_path)
    t0 = time.monotonic()
    ep = await asyncio.to_thread(stack.start)
    started_in = time.monotonic() - t0
    try:
        procs = stack.processes
        assert [p.name for p in procs] == ["kafka", "mongodb", "s3", "dynamodb"]
        for p in procs:
            assert p.log_path == tmp_path / "logs" / f"{p.name}.log"
            assert p.log_path.exists()
            assert not _gone(p.pid)
        assert ep.kafka_bootstrap.startswith("127.0.0.1:")
        assert ep.mongo_uri.startswith("mongodb://127.0.0.1:") and "replicaSet=rs0" in ep.mongo_uri
        assert ep.s3_endpoint.startswith("http://127.0.0.1:")
        assert ep.dynamodb_endpoint.startswith("http://127.0.0.1:")
        assert ep.aws_region == "us-east-1"

        await _kafka_roundtrip(ep.kafka_bootstrap)
        await _mongo_roundtrip(ep.mongo_uri)
        await asyncio.to_thread(_s3_roundtrip, ep, f"stack-{uuid.uuid4().hex[:8]}")
        await asyncio.to_thread(_dynamodb_roundtrip, ep)
    finally:
        await asyncio.to_thread(stack.stop)

    print(f"embedded stack started in {started_in:.1f} s")
    for p in procs:
        assert _gone(p.pid), f"{p.name} (pid {p.pid}) still running after stop()"
    assert stack.processes == []
    stack.stop()  # idempotent


def test_two_stacks_side_by_side(tmp_path: Path) -> None:
    a, b = EmbeddedStack(tmp_path / "a"), EmbeddedStack(tmp_path / "b")
    with ThreadPoolExecutor(2) as pool:
        try:
            ea, eb = pool.map(lambda st: st.start(), (a, b))  # at the same time
            assert set(vars(ea).values()).isdisjoint(
                {eb.kafka_bootstrap, eb.mongo_uri, eb.s3_endpoint, eb.dynamodb_endpoint}
            )
            _s3_roundtrip(ea, "only-in-a")
            names_b = [x["Name"] for x in _boto("s3", eb.s3_endpoint, eb).list_buckets()["Buckets"]]
            assert "only-in-a" not in names_b
        finally:
            list(pool.map(lambda st: st.stop(), (a, b)))


def _record_spawned(monkeypatch: pytest.MonkeyPatch) -> list:
    spawned = []
    real_spawn = EmbeddedStack._spawn

    def spawn(self, name, argv, attempt, env=None, cwd=None):
        proc = real_spawn(self, name, argv, attempt, env=env, cwd=cwd)
        spawned.append(proc)
        return proc

    monkeypatch.setattr(EmbeddedStack, "_spawn", spawn)
    return spawned


def test_server_that_exits_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned = _record_spawned(monkeypatch)
    monkeypatch.setattr(stack_mod, "mongod_bin", lambda: "/bin/false")
    stack = EmbeddedStack(tmp_path)
    with pytest.raises(ServerStartError) as info:
        stack.start()
    err = info.value
    assert err.server == "mongodb"
    assert str(err).startswith("MongoDB (mongod) exited with code 1 before becoming ready on 127.0.0.1:")
    assert str(tmp_path / "logs" / "mongodb.log") in str(err)
    assert "/bin/false" in str(err)  # the log tail: our header line with the command
    assert stack.processes == []
    assert spawned and all(p.poll() is not None for p in spawned)


def test_server_that_never_gets_ready_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned = _record_spawned(monkeypatch)
    monkeypatch.setattr(stack_mod, "moto_server_cmd", lambda: [sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setitem(stack_mod.READY_TIMEOUTS, "dynamodb", 1.0)
    stack = EmbeddedStack(tmp_path)
    with pytest.raises(ServerStartError) as info:
        stack.start()
    err = info.value
    assert err.server == "dynamodb"
    assert str(err).startswith("DynamoDB (moto_server) did not become ready on 127.0.0.1:")
    assert "within 1 s; see " + str(tmp_path / "logs" / "dynamodb.log") in str(err)
    assert all(p.poll() is not None for p in spawned)


def test_port_taken_before_bind_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real_take_port = EmbeddedStack._take_port
    handed_out = []

    def take_port(self):  # mongod's first port is already in use when it binds
        if threading.current_thread().name == "bulkops-stack-mongodb" and not handed_out:
            handed_out.append(taken)
            return taken
        return real_take_port(self)

    monkeypatch.setattr(EmbeddedStack, "_take_port", take_port)
    stack = EmbeddedStack(tmp_path)
    try:
        ep = stack.start()
        assert handed_out == [taken]
        assert f":{taken}/" not in ep.mongo_uri
        log = (tmp_path / "logs" / "mongodb.log").read_text()
        assert "attempt 1:" in log and "attempt 2:" in log
    finally:
        stack.stop()
        squatter.close()


def test_endpoints_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = ["BULKOPS_KAFKA_BOOTSTRAP", "BULKOPS_MONGO_URI", "BULKOPS_S3_ENDPOINT", "BULKOPS_DYNAMODB_ENDPOINT"]
    for k in [*keys, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"]:
        monkeypatch.delenv(k, raising=False)
    assert stack_mod.endpoints_from_env() is None
    ep = Endpoints("h:1", "mongodb://h:2/?replicaSet=rs0", "http://h:3", "http://h:4", "ak", "sk", "eu-west-1")
    for k, v in ep.as_env().items():
        monkeypatch.setenv(k, v)
    assert stack_mod.endpoints_from_env() == ep
    monkeypatch.delenv("BULKOPS_S3_ENDPOINT")
    assert stack_mod.endpoints_from_env() is None
