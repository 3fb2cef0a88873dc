"""`bulkops`: run the stack locally, mint dev tokens, import a CSV file."""
from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shared.api import MAX_USERS
from shared.auth import issue_dev_token

from . import devstack
from .client import BulkopsClient, ClientError
from .csv_users import CsvHeaderError, parse_users_csv

STATE_DIR = ".bulkops"


def default_workdir() -> str:
    """$BULKOPS_WORKDIR, else the nearest .bulkops folder here or above (so the CLI works from any
    folder of the checkout), else ./.bulkops."""
    if os.environ.get("BULKOPS_WORKDIR"):
        return os.environ["BULKOPS_WORKDIR"]
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / STATE_DIR).is_dir():
            return str(folder / STATE_DIR)
    return STATE_DIR


def positive(limit: int):
    def parse(text: str) -> int:
        value = int(text)
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}")
        return value
    return parse
console = Console(stderr=True)


def _dev_state(workdir: Path) -> devstack.DevStack:
    state = workdir / "dev.json"
    if not state.exists():
        raise ClientError(f"no running stack ({state} not found): start one with `bulkops dev up`")
    return devstack.DevStack.load(state)


def cmd_dev(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir)
    if args.action == "up":
        if (workdir / "dev.json").exists():
            dev = devstack.DevStack.load(workdir / "dev.json")
            if all(dev.ours(name) for name in dev.pids):
                console.print(f"already running (ingest {dev.ingestUrl}, jobs {dev.jobsUrl})")
                return 0
            console.print("a previous stack is partly gone: stopping what is left of it")
            devstack.down(workdir)
        console.print("starting Kafka (Tansu), MongoDB, S3 (SeaweedFS), DynamoDB (moto) and the services…")
        started = time.monotonic()
        dev = devstack.up(workdir, importers=args.importers)
        console.print(f"stack up in {time.monotonic() - started:.1f} s; state in {workdir / 'dev.json'}; logs in {dev.logs}")
        print(json.dumps({k: v for k, v in vars(dev).items() if k not in ("pids", "logs")}, indent=2))
    elif args.action == "down":
        stopped = devstack.down(workdir)
        console.print(f"stopped {len(stopped)} processes" if stopped else "nothing was running")
    else:
        dev = _dev_state(workdir)
        table = Table("process", "pid", "state")
        for name, pid in dev.pids.items():
            table.add_row(name, str(pid), "running" if dev.ours(name) else "[red]not running[/red]")
        console.print(table)
        console.print(f"ingest {dev.ingestUrl}   jobs {dev.jobsUrl}")
        return 0 if all(dev.ours(name) for name in dev.pids) else 1
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    dev = _dev_state(Path(args.workdir))
    print(issue_dev_token(dev.jwtSecret, args.org, role=args.role, ttl_seconds=args.ttl))
    return 0


def _submit_all(client: BulkopsClient, requests: list[list[Any]], options: dict[str, bool]) -> list[tuple[int, dict]]:
    return [client.submit([u.user for u in batch], options) for batch in requests]


def _follow(client: BulkopsClient, accepted: dict[int, dict[str, Any]], wait: float) -> dict[int, dict[str, Any]]:
    """Poll every async job until it ends: a progress bar each on a terminal, a line every few
    seconds otherwise (CI logs, pipes)."""
    final: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + wait
    last_line = 0.0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=not console.is_terminal) as progress:
        tasks = {n: progress.add_task(data["jobId"], total=data["totalRecords"], status="pending") for n, data in accepted.items()}
        while len(final) < len(accepted):
            jobs = {n: client.job(data["statusUrl"]) for n, data in accepted.items() if n not in final}
            for n, job in jobs.items():
                progress.update(tasks[n], completed=job["processed"], status=job["status"])
                if job["status"] in ("completed", "failed"):
                    final[n] = job
            if not console.is_terminal and (time.monotonic() - last_line > 2 or len(final) == len(accepted)):
                last_line = time.monotonic()
                for job in jobs.values():
                    console.print(f"{job['jobId']}: {job['status']} {job['processed']}/{job['totalRecords']}")
            if time.monotonic() > deadline and len(final) < len(accepted):
                stuck = ", ".join(f"{j['jobId']} ({j['status']})" for n, j in jobs.items() if n not in final)
                raise ClientError(f"gave up after {wait:.0f} s waiting for {stuck}; is an importer running? (`bulkops dev status`)")
            time.sleep(0.25)
    return final


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        parsed = parse_users_csv(path.read_bytes())
    except OSError as exc:
        raise ClientError(f"cannot read {path}: {exc.strerror}") from None
    except CsvHeaderError as exc:
        raise ClientError(f"{path}: {exc}") from None
    for error in parsed.errors:
        console.print(f"[red]{path}:{error.line}: {error.message} (not sent)[/red]")
    dev = None if args.token and args.ingest_url else _dev_state(Path(args.workdir))
    ingest_url = args.ingest_url or dev.ingestUrl
    token = args.token or issue_dev_token(dev.jwtSecret, args.org)
    options = {"upsert": not args.no_upsert, "skipDuplicates": args.skip_duplicates, "sendWelcomeEmail": args.send_welcome_email}
    size = min(args.batch_size, MAX_USERS)
    batches = [parsed.users[i : i + size] for i in range(0, len(parsed.users), size)]
    client = BulkopsClient(ingest_url, token, args.org)
    console.print(f"{path}: {len(parsed.users)} users in {len(batches)} request(s) for org {args.org}")
    responses = _submit_all(client, batches, options)
    accepted = {n: data for n, (status, data) in enumerate(responses) if status == 202}
    finals = _follow(client, accepted, args.wait) if accepted else {}

    rows: list[dict[str, Any]] = [
        {"line": e.line, "status": "failed", "error": {"code": "CSV_PARSE_ERROR", "message": e.message, "field": None}}
        for e in parsed.errors
    ]
    failed_jobs = []
    for n, batch in enumerate(batches):
        status, data = responses[n]
        if status == 200:
            results = data["results"]
        elif finals[n]["status"] == "completed":
            results = [json.loads(line) for line in client.download(finals[n]["downloadUrl"])]
        else:
            failed_jobs.append((data["jobId"], finals[n].get("error")))
            results = [{"index": i, "status": "failed", "error": {"code": "JOB_FAILED", "message": "the job failed", "field": None}} for i in range(len(batch))]
        for result in results:
            rows.append({"line": batch[result["index"]].line, **result})
    client.close()
    rows.sort(key=lambda r: r["line"])
    out = path.with_name(path.name + ".results.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    _summary(rows, out, failed_jobs, [data["jobId"] for data in accepted.values()])
    return 1 if failed_jobs or parsed.errors else 0


def _summary(rows: list[dict[str, Any]], out: Path, failed_jobs: list, job_ids: list[str]) -> None:
    counts = collections.Counter(r["status"] for r in rows)
    codes = collections.Counter(r["error"]["code"] for r in rows if r.get("error"))
    table = Table("created", "updated", "skipped", "failed", "total", title="import summary")
    table.add_row(*(str(counts[s]) for s in ("created", "updated", "skipped", "failed")), str(len(rows)))
    console.print(table)
    for code, number in codes.most_common(5):
        console.print(f"  {number:>6}  {code}")
    for job_id, error in failed_jobs:
        console.print(f"[red]job {job_id} failed: {error}[/red]")
    console.print(f"row-by-row results: {out}")
    print(json.dumps({"created": counts["created"], "updated": counts["updated"], "skipped": counts["skipped"],
                      "failed": counts["failed"], "errors": dict(codes.most_common()), "results": str(out), "jobIds": job_ids}))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="bulkops", description="bulk user import service: local stack and client")
    top.add_argument("--workdir", default=default_workdir(),
                     help="where the local stack keeps its state (default: $BULKOPS_WORKDIR or the nearest .bulkops folder)")
    commands = top.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole system locally on real servers")
    dev.add_argument("action", choices=["up", "down", "status"])
    dev.add_argument("--importers", type=positive(8), default=2, help="importer processes in one consumer group (default 2)")
    dev.set_defaults(run=cmd_dev)

    token = commands.add_parser("token", help="print a dev JWT for the running stack")
    token.add_argument("--org", required=True)
    token.add_argument("--role", default="admin", choices=["admin", "super_admin"])
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.set_defaults(run=cmd_token)

    imp = commands.add_parser("import", help="import users from a CSV file")
    imp.add_argument("file")
    imp.add_argument("--org", required=True)
    imp.add_argument("--no-upsert", action="store_true", help="existing users fail with USER_EXISTS")
    imp.add_argument("--skip-duplicates", action="store_true", help="existing users are skipped, untouched")
    imp.add_argument("--send-welcome-email", action="store_true")
    imp.add_argument("--batch-size", type=positive(MAX_USERS), default=MAX_USERS, help="users per request (1 to 10,000)")
    imp.add_argument("--wait", type=float, default=3600, help="seconds to follow the jobs before giving up (default 3600)")
    imp.add_argument("--ingest-url", help="default: the running dev stack's")
    imp.add_argument("--token", help="a Bearer token (default: a dev token for --org)")
    imp.set_defaults(run=cmd_import)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ClientError, RuntimeError) as exc:
        console.print(f"[red]bulkops: {exc}[/red]")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
