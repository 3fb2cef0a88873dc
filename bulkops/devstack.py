"""The whole system on one machine: the embedded servers plus the three services as processes.

Used by `bulkops dev up` (detached, state in .bulkops/dev.json) and by the test suite.
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from shared.provision import provision
from shared.settings import CommonSettings

from .stack import EmbeddedStack, Endpoints, free_port, process_start_time, stop_pids

SERVICE_START_TIMEOUT = 60.0


@dataclass
class DevStack:
    """What a client needs to reach a running stack; serialised as .bulkops/dev.json."""

    ingestUrl: str
    jobsUrl: str
    jwtSecret: str
    kafkaBootstrap: str
    mongoUri: str
    s3Endpoint: str
    dynamodbEndpoint: str
    awsAccessKeyId: str
    awsSecretAccessKey: str
    awsRegion: str
    pids: dict[str, int] = field(default_factory=dict)
    starts: dict[str, int | None] = field(default_factory=dict)  # process start times: see `ours`
    logs: str = ""

    def record(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.starts[name] = process_start_time(pid)

    def ours(self, name: str) -> bool:
        """The process is still the one we started (not gone, not a stranger that reuses its pid)."""
        return self.starts.get(name) is not None and process_start_time(self.pids[name]) == self.starts[name]

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> "DevStack":
        return cls(**json.loads(path.read_text()))



def service_env(endpoints: Endpoints, jwt_secret: str) -> dict[str, str]:
    return {**endpoints.as_env(), "BULKOPS_AWS_REGION": endpoints.aws_region, "BULKOPS_JWT_SECRET": jwt_secret}


def settings_for(endpoints: Endpoints) -> CommonSettings:
    return CommonSettings(
        kafka_bootstrap=endpoints.kafka_bootstrap, mongo_uri=endpoints.mongo_uri, s3_endpoint=endpoints.s3_endpoint,
        dynamodb_endpoint=endpoints.dynamodb_endpoint, aws_region=endpoints.aws_region,
        aws_access_key_id=endpoints.aws_access_key_id, aws_secret_access_key=endpoints.aws_secret_access_key,
    )


def _spawn(name: str, args: list[str], env: dict[str, str], logs: Path, detach: bool) -> subprocess.Popen:
    logs.mkdir(parents=True, exist_ok=True)
    log_file = open(logs / f"{name}.log", "ab")
    return subprocess.Popen(
        [sys.executable, *args], env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=detach, cwd=Path(__file__).resolve().parent.parent,
    )


def _wait_until(name: str, ready, process: subprocess.Popen, log: Path, waiting_for: str) -> None:
    """Poll `ready()` until it is true; fail early, with the log's tail, if the process exits."""
    deadline = time.monotonic() + SERVICE_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with status {process.returncode} at start; see {log}:\n{_tail(log)}")
        if ready():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not {waiting_for} within {SERVICE_START_TIMEOUT:.0f} s; see {log}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _logged(log: Path, marker: str) -> bool:
    return log.exists() and marker in log.read_text(errors="replace")


def _tail(path: Path, lines: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def start_services(endpoints: Endpoints, workdir: Path, jwt_secret: str, importers: int = 1, detach: bool = False) -> DevStack:
    """Provision the resources, then start ingest, jobs and `importers` importer processes."""
    asyncio.run(provision(settings_for(endpoints)))
    logs = workdir / "logs"
    ingest_port, jobs_port = free_port(), free_port()
    jobs_url, ingest_url = f"http://127.0.0.1:{jobs_port}", f"http://127.0.0.1:{ingest_port}"
    env = {**service_env(endpoints, jwt_secret), "BULKOPS_JOBS_PUBLIC_URL": jobs_url}
    uvicorn = ["-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log", "--port"]
    processes = {
        "jobs": _spawn("jobs", [*uvicorn, str(jobs_port), "services.jobs.app:app"], env, logs, detach),
        "ingest": _spawn("ingest", [*uvicorn, str(ingest_port), "services.ingest.app:app"], env, logs, detach),
    }
    for n in range(importers):
        processes[f"importer-{n + 1}"] = _spawn(f"importer-{n + 1}", ["-m", "services.importer"], env, logs, detach)
    try:
        for name, url in (("jobs", jobs_url), ("ingest", ingest_url)):
            _wait_until(name, lambda: _answers(url), processes[name], logs / f"{name}.log", f"answer on {url}")
        for name, process in processes.items():
            if name.startswith("importer"):
                log = logs / f"{name}.log"
                _wait_until(name, lambda: _logged(log, "started"), process, log, "start")
    except BaseException:
        stop_pids([p.pid for p in processes.values()])
        raise
    dev = DevStack(
        ingestUrl=ingest_url, jobsUrl=jobs_url, jwtSecret=jwt_secret, kafkaBootstrap=endpoints.kafka_bootstrap,
        mongoUri=endpoints.mongo_uri, s3Endpoint=endpoints.s3_endpoint, dynamodbEndpoint=endpoints.dynamodb_endpoint,
        awsAccessKeyId=endpoints.aws_access_key_id, awsSecretAccessKey=endpoints.aws_secret_access_key,
        awsRegion=endpoints.aws_region, logs=str(logs),
    )
    for name, process in processes.items():
        dev.record(name, process.pid)
    return dev


def up(workdir: Path, importers: int = 2) -> DevStack:
    stack = EmbeddedStack(workdir / "stack", detach=True)
    endpoints = stack.start()
    try:
        dev = start_services(endpoints, workdir, secrets.token_urlsafe(32), importers=importers, detach=True)
    except BaseException:
        stack.stop()
        raise
    for server in stack.processes:
        dev.record(f"server:{server.name}", server.pid)
    dev.save(workdir / "dev.json")
    return dev


def down(workdir: Path) -> list[str]:
    state = workdir / "dev.json"
    if not state.exists():
        return []
    dev = DevStack.load(state)
    mine = [name for name in dev.pids if dev.ours(name)]
    # Services first, so they do not log errors about servers vanishing under them.
    stop_pids([dev.pids[n] for n in mine if not n.startswith("server:")])
    stop_pids([dev.pids[n] for n in mine if n.startswith("server:")])
    state.unlink()
    return mine
