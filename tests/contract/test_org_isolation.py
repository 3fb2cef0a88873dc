"""Every user and job is scoped by org: one org never sees or touches another's."""
from __future__ import annotations

from ..conftest import new_org
from .conftest import assert_error, counts, ok_data, statuses, super_admin_for


async def test_the_same_user_id_and_email_in_two_orgs_are_two_users(api_factory, user_store):
    a, b = api_factory(), api_factory()
    ok_data(await a.import_users([{"userId": "shared", "email": "shared@orgs.io", "customFields": {"org": "a"}, "metadata": {"m": "a"}}]))
    before = await user_store.get_user(a.org, "shared")

    data = ok_data(await b.import_users([
        {"userId": "shared", "email": "other@orgs.io", "customFields": {"org": "b"}},
        {"userId": "someone", "email": "SHARED@orgs.io"},  # a's email is free in b: no IDENTITY_CONFLICT
    ]))
    assert statuses(data["results"]) == ["created", "created"]
    # The email-only row in b does not find a's user either.
    data = ok_data(await b.import_users([{"email": "shared@orgs.io", "metadata": {"via": "b"}}]))
    assert statuses(data["results"]) == ["updated"] and data["results"][0]["userId"] == "someone"

    assert await user_store.get_user(a.org, "shared") == before  # untouched
    in_b = await user_store.get_user(b.org, "shared")
    assert (in_b.email, in_b.custom_fields, in_b.metadata) == ("other@orgs.io", {"org": "b"}, {})
    assert await user_store.get_user(a.org, "someone") is None

    # And the other way round: an update in a does not reach b.
    data = ok_data(await a.import_users([{"userId": "shared", "customFields": {"org": "a2"}}]))
    assert counts(data) == (1, 0, 1, 0, 0)
    assert (await user_store.get_user(b.org, "shared")).custom_fields == {"org": "b"}


async def test_another_orgs_job_is_404_job_not_found_for_admins_and_super_admins(system, api_factory):
    owner, outsider = api_factory(), api_factory()
    accepted = ok_data(await owner.import_users([{"userId": f"i{i}"} for i in range(100)]), 202)
    job_id = accepted["jobId"]
    super_for_outsider = super_admin_for(system, outsider.org)
    super_for_owner = super_admin_for(system, owner.org)
    try:
        # While the job may still be pending (the S3 fallback), and once it is completed.
        for _ in range(2):
            assert_error(await outsider.job(job_id), 404, "JOB_NOT_FOUND")
            assert_error(await super_for_outsider.job(job_id), 404, "JOB_NOT_FOUND")
            assert ok_data(await super_for_owner.job(job_id))["jobId"] == job_id
            await owner.wait_for_job(job_id)
        # Exactly like a job that does not exist (apart from the id in the message).
        missing = "job_00000000-0000-4000-8000-000000000000"
        theirs = (await outsider.job(job_id)).json()
        nobodys = (await outsider.job(missing)).json()
        assert theirs["error"]["message"].replace(job_id, "ID") == nobodys["error"]["message"].replace(missing, "ID")
    finally:
        await super_for_outsider.close()
        await super_for_owner.close()


async def test_an_import_event_cannot_read_another_orgs_users(importer_adapters, user_store):
    """Any service may publish import.requested, but only of users under its org's own prefix."""
    import uuid

    from services.importer.handlers import handle_import_requested
    from shared.adapters.object_store import request_key
    from shared.events import ImportRequested, ObjectLocation

    victim, thief = new_org(), new_org()
    victim_job = f"job_{uuid.uuid4()}"
    location = await importer_adapters.objects.put(
        request_key(victim, victim_job), b'{"users": [{"userId": "secret"}]}', "application/json"
    )
    for where in (location, ObjectLocation(bucket="another-bucket", key=f"requests/{thief}/x.json")):
        event = ImportRequested(jobId=f"job_{uuid.uuid4()}", orgId=thief, totalRecords=1, usersLocation=where)
        final = await handle_import_requested(event, importer_adapters, chunk_rows=250)
        assert final.eventType == "import.failed" and final.error.code == "INVALID_IMPORT_REQUEST"
    assert await user_store.get_user(thief, "secret") is None
