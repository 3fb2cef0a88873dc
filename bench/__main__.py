"""The benchmark: how close the import pipeline gets to the user store's own write speed.

`make bench` (or `python -m bench --runs 5`). Starts its own embedded stack and services, then
measures, each as median/min/max of several runs, side by side on the same machine:
  floor       the importer's own writes for the 10,000-user sample, straight to the user store
              (same chunks, two in flight at a time, same 25-item batches, same concurrency; no HTTP,
              Kafka, S3 or reads)
  end-to-end  POST of the 10,000 users → the job `completed` in the jobs service (after one
              200-user warm-up job, reported apart)
  re-import   the same POST again into the now populated org (every row an update)
  ratio       end-to-end / floor
  accept      time to the 202 of that POST
  sync        p50 / p99 of 99-user requests
  memory      peak resident memory (VmHWM) of the importer and ingest processes
  throughput  10 jobs of 10,000 users submitted at once, users per second
Prints a table and writes bench/results/latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
import uuid
from collections import deque
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bulkops.csv_users import parse_users_csv
from bulkops.devstack import DevStack, settings_for, start_services
from bulkops.stack import EmbeddedStack, stop_pids
from services.importer.settings import ImporterSettings
from shared.adapters.aws import aws_client
from shared.adapters.user_store import UserStore
from shared.auth import issue_dev_token
from shared.domain.model import ImportOptions
from shared.domain.user_import import ImportPlan
from shared.domain.validation import UserRow, validate_user
from shared.events import utc_now
from shared.importing import CHUNKS_IN_FLIGHT
from shared.settings import CommonSettings

ROOT = Path(__file__).resolve().parents[1]
console = Console()


def summary(samples: list[float]) -> dict[str, float]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def planned_writes(users: list[Any], chunk_rows: int) -> list[list]:
    """The writes the importer makes for these users into an empty org, chunk by chunk."""
    plan = ImportPlan("job_bench", ImportOptions())
    chunks = []
    for start in range(0, len(users), chunk_rows):
        rows = [(i, r) for i in range(start, min(start + chunk_rows, len(users))) if isinstance(r := validate_user(users[i]), UserRow)]
        lookup = plan.lookup_for(rows)
        plan.learn({u: None for u in lookup.user_ids}, {e: None for e in lookup.email_keys})
        now = utc_now()
        for i, row in rows:
            plan.apply(i, row, now)
        chunks.append([w.write for w in plan.take_writes()])
    return chunks


async def floor_run(settings: CommonSettings, chunks: list[list], importer: ImporterSettings) -> float:
    async with aws_client("dynamodb", settings, max_pool=importer.write_concurrency * 2) as client:
        store = UserStore(client, settings.users_table, settings.dynamodb_endpoint, concurrency=importer.write_concurrency)
        org = "bench-floor-" + uuid.uuid4().hex[:8]
        started = time.perf_counter()
        in_flight: deque[asyncio.Future] = deque()
        for writes in chunks:  # as many chunks in flight at a time as the importer
            in_flight.append(asyncio.ensure_future(store.write(org, writes)))
            if len(in_flight) == CHUNKS_IN_FLIGHT:
                assert not await in_flight.popleft()
        while in_flight:
            assert not await in_flight.popleft()
        return time.perf_counter() - started


class Admin:
    def __init__(self, dev: DevStack) -> None:
        self.dev = dev

    def client(self, org: str) -> httpx.AsyncClient:
        token = issue_dev_token(self.dev.jwtSecret, org)
        return httpx.AsyncClient(timeout=120, headers={"Authorization": f"Bearer {token}", "X-Org-ID": org, "Content-Type": "application/json"})

    async def job(self, org: str, body: bytes) -> tuple[float, float, dict]:
        """(seconds to the 202, seconds to `completed`, final job)."""
        async with self.client(org) as http:
            started = time.perf_counter()
            response = await http.post(f"{self.dev.ingestUrl}/v1/bulk/users", content=body)
            accepted = time.perf_counter() - started
            assert response.status_code == 202, response.text
            url = response.json()["data"]["statusUrl"]
            while True:
                job = (await http.get(url)).json()["data"]
                if job["status"] in ("completed", "failed"):
                    assert job["status"] == "completed", job
                    return accepted, time.perf_counter() - started, job
                await asyncio.sleep(0.05)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(dev: DevStack, settings: CommonSettings, runs: int, throughput_jobs: int) -> dict[str, Any]:
    users = [u.user for u in parse_users_csv((ROOT / "data" / "users-10k.csv").read_bytes()).users]
    body = json.dumps({"users": users}).encode()
    importer = ImporterSettings()
    chunks = planned_writes(users, importer.chunk_rows)
    admin = Admin(dev)
    # The services' first job pays for warming up (connections, lazily built clients): one small
    # job first, reported apart, so that the runs measure the steady state.
    _, cold, _ = await admin.job("bench-warmup-" + uuid.uuid4().hex[:8], json.dumps({"users": users[:200]}).encode())
    console.print(f"warm-up job of 200 users: {cold:.2f} s")
    floors, e2e, accepts = [], [], []
    for run in range(runs):
        floors.append(await floor_run(settings, chunks, importer))
        last_org = "bench-e2e-" + uuid.uuid4().hex[:8]
        accepted, total, job = await admin.job(last_org, body)
        assert (job["created"], job["updated"], job["failed"]) == (9634, 50, 316), job
        accepts.append(accepted)
        e2e.append(total)
        console.print(f"run {run + 1}/{runs}: floor {floors[-1]:.2f} s, end-to-end {total:.2f} s, accept {accepted:.3f} s")

    # The same 10,000 users again into a populated org: every row an update, read per chunk.
    _, reimport, job = await admin.job(last_org, body)
    assert (job["created"], job["updated"], job["failed"]) == (0, 9684, 316), job
    console.print(f"re-import into the populated org: {reimport:.2f} s")

    sync_body = json.dumps({"users": users[:99]}).encode()
    sync = []
    async with admin.client("bench-sync-" + uuid.uuid4().hex[:8]) as http:
        for _ in range(max(30, runs * 10)):
            started = time.perf_counter()
            response = await http.post(f"{dev.ingestUrl}/v1/bulk/users", content=sync_body)
            sync.append(time.perf_counter() - started)
            assert response.status_code == 200
    sync.sort()

    memory = {name: peak_rss_mb(pid) for name, pid in dev.pids.items() if name.startswith(("importer", "ingest"))}

    started = time.perf_counter()
    await asyncio.gather(*(admin.job("bench-many-" + uuid.uuid4().hex[:8], body) for _ in range(throughput_jobs)))
    many = time.perf_counter() - started

    floor, end_to_end = summary(floors), summary(e2e)
    items = sum(len(c) for c in chunks)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "floor_seconds": floor | {"items": items, "batch_write_calls": sum((len(c) + 24) // 25 for c in chunks)},
        "end_to_end_seconds": end_to_end,
        # Each run's floor and end-to-end are measured back to back, so their ratio is the steadier
        # figure on a noisy machine; the ratio of the two medians is kept beside it.
        "ratio": summary([e / f for e, f in zip(e2e, floors)]) | {"of_medians": end_to_end["median"] / floor["median"]},
        "reimport_all_updates_seconds": reimport,
        "accept_seconds": summary(accepts),
        "warmup_200_users_seconds": cold,
        "sync_99_users_seconds": {"p50": sync[len(sync) // 2], "p99": sync[min(len(sync) - 1, int(len(sync) * 0.99))],
                                  "min": sync[0], "max": sync[-1], "requests": len(sync)},
        "peak_rss_mb": memory,
        "throughput": {"jobs": throughput_jobs, "users": throughput_jobs * len(users), "seconds": many,
                       "users_per_second": throughput_jobs * len(users) / many},
    }


def report(results: dict[str, Any]) -> None:
    table = Table("measure", "median", "min", "max", title=f"bulkops bench, {results['date']}, {results['machine']['cores']} cores")
    for name, key in [("floor: store writes (s)", "floor_seconds"), ("end-to-end 10k (s)", "end_to_end_seconds"), ("accept 10k (s)", "accept_seconds")]:
        r = results[key]
        table.add_row(name, f"{r['median']:.3f}", f"{r['min']:.3f}", f"{r['max']:.3f}")
    ratio = results["ratio"]
    table.add_row("ratio end-to-end / floor, per run", f"{ratio['median']:.2f}", f"{ratio['min']:.2f}", f"{ratio['max']:.2f}")
    table.add_row("ratio of the medians", f"{ratio['of_medians']:.2f}", "", "")
    table.add_row("re-import 10k, all updates (s)", f"{results['reimport_all_updates_seconds']:.3f}", "", "")
    s = results["sync_99_users_seconds"]
    table.add_row("sync 99 users p50 / p99 (s)", f"{s['p50']:.3f}", f"{s['min']:.3f}", f"p99 {s['p99']:.3f}")
    for name, mb in results["peak_rss_mb"].items():
        table.add_row(f"peak RSS {name} (MB)", f"{mb:.0f}", "", "")
    t = results["throughput"]
    table.add_row(f"throughput {t['jobs']}×10k (users/s)", f"{t['users_per_second']:.0f}", "", f"{t['seconds']:.1f} s")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--throughput-jobs", type=int, default=10)
    parser.add_argument("--importers", type=int, default=2)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bulkops-bench-"))
    with EmbeddedStack(workdir / "stack") as stack:
        dev = start_services(stack.endpoints, workdir, secrets.token_urlsafe(32), importers=args.importers)
        try:
            results = asyncio.run(measure(dev, settings_for(stack.endpoints), args.runs, args.throughput_jobs))
        finally:
            stop_pids(list(dev.pids.values()))
    report(results)
    out = ROOT / "bench" / "results" / "latest.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
