"""The import pipeline end to end on real servers: ingest → S3 → Kafka → importer → DynamoDB → jobs."""
from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import httpx

from bulkops import cli
from shared.adapters.user_store import UserStore

from ..conftest import SAMPLE_CSV, Api, new_org


async def test_sync_import_answers_every_row_and_writes_the_users(api: Api, user_store: UserStore):
    users = [
        {"userId": "u1", "email": "ann@example.com", "customFields": {"tier": "gold"}},
        {"email": "bob@example.com"},
        {"userId": "u3", "email": "not-an-email"},
        {"customFields": {"x": 1}},
    ]
    response = await api.import_users(users)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["mode"], data["total"], data["created"], data["updated"], data["skipped"], data["failed"]) == ("sync", 4, 2, 0, 0, 2)
    assert [(r["index"], r["status"]) for r in data["results"]] == [(0, "created"), (1, "created"), (2, "failed"), (3, "failed")]
    assert [r["error"]["code"] for r in data["results"][2:]] == ["INVALID_EMAIL", "MISSING_IDENTIFIER"]
    assert data["results"][1]["userId"].startswith("usr_")
    stored = await user_store.get_user(api.org, "u1")
    assert (stored.email, stored.custom_fields) == ("ann@example.com", {"tier": "gold"})
    assert await user_store.get_user(api.org, data["results"][1]["userId"]) is not None


async def test_async_import_from_post_to_downloadable_results(api: Api):
    users = [{"userId": f"u{i}", "email": f"user{i}@example.com"} for i in range(150)]
    users[7] = {"userId": "u7", "email": "broken"}
    users[149] = {"userId": "u0", "customFields": {"again": "yes"}}
    response = await api.import_users(users)
    assert response.status_code == 202, response.text
    accepted = response.json()["data"]
    assert accepted["mode"] == "async" and accepted["status"] == "pending" and accepted["totalRecords"] == 150
    assert accepted["jobId"].startswith("job_") and accepted["statusUrl"] == f"{api.dev.jobsUrl}/v1/bulk/jobs/{accepted['jobId']}"

    job = await api.wait_for_job(accepted["jobId"])
    assert job["status"] == "completed"
    assert (job["processed"], job["created"], job["updated"], job["skipped"], job["failed"]) == (150, 148, 1, 0, 1)
    assert job["startedAt"] and job["completedAt"] and job["expiresAt"] > job["createdAt"]
    rows = await api.results(job)
    assert [r["index"] for r in rows] == list(range(150))
    assert rows[7]["error"]["code"] == "INVALID_EMAIL" and rows[149]["status"] == "updated"

    tampered = job["downloadUrl"].replace("Signature=", "Signature=0")
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(tampered)).status_code == 403


async def test_the_sample_csv_imports_with_the_contracts_counts(system, tmp_path, capsys):
    """The 10,000-row export, through `bulkops import` and the async path, into an empty org."""
    csv_file = tmp_path / "users-10k.csv"
    shutil.copy(SAMPLE_CSV, csv_file)
    workdir = str(Path(system.logs).parent)
    code = await asyncio.to_thread(cli.main, ["--workdir", workdir, "import", str(csv_file), "--org", new_org()])
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "users-10k.csv.results.jsonl").read_text().splitlines()]
    statuses = {s: sum(r["status"] == s for r in rows) for s in ("created", "updated", "skipped", "failed")}
    assert statuses == {"created": 9634, "updated": 50, "skipped": 0, "failed": 316}
    codes = {c: sum(r.get("error", {}).get("code") == c for r in rows) for c in ("INVALID_EMAIL", "MISSING_IDENTIFIER")}
    assert codes == {"INVALID_EMAIL": 224, "MISSING_IDENTIFIER": 92}
    assert len({r["line"] for r in rows}) == 10_000
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # the last line: for scripts
    assert summary["created"] == 9634 and summary["failed"] == 316 and summary["errors"]["INVALID_EMAIL"] == 224
    assert len(summary["jobIds"]) == 1 and summary["jobIds"][0].startswith("job_")


async def test_the_cli_imports_a_small_csv_and_reports_bad_lines(system, tmp_path, user_store: UserStore):
    csv_file = tmp_path / "few.csv"
    csv_file.write_bytes(
        "\ufeffuserId,email,customFields.city,metadata.source\r\n"
        'c1,c1@example.com,"Bergen, NO",crm\r\n'
        "c2,c2@example.com,Oslo,crm,EXTRA\r\n"
        ',c3@example.com,"Multi\nline",\r\n'.encode()
    )
    org = new_org()
    workdir = str(Path(system.logs).parent)
    code = await asyncio.to_thread(cli.main, ["--workdir", workdir, "import", str(csv_file), "--org", org])
    assert code == 1  # a line could not be parsed: reported and the exit status says so
    rows = [json.loads(line) for line in (tmp_path / "few.csv.results.jsonl").read_text().splitlines()]
    assert [(r["line"], r["status"]) for r in rows] == [(2, "created"), (3, "failed"), (4, "created")]
    assert rows[1]["error"]["code"] == "CSV_PARSE_ERROR"
    stored = await user_store.get_user(org, "c1")
    assert stored.custom_fields == {"city": "Bergen, NO"} and stored.metadata == {"source": "crm"}


async def test_the_cli_names_an_unreachable_service(tmp_path, capsys):
    csv_file = tmp_path / "one.csv"
    csv_file.write_text("userId\nu1\n")
    code = await asyncio.to_thread(
        cli.main, ["import", str(csv_file), "--org", "o", "--ingest-url", "http://127.0.0.1:9", "--token", "t"]
    )
    assert code == 2
    assert "ingest service is not reachable at http://127.0.0.1:9" in capsys.readouterr().err
