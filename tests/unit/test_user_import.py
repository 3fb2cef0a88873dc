"""The options matrix, identity and merge, on an in-memory picture of the store."""
from shared.domain.model import DeleteEmailClaim, DeleteUser, ImportOptions, PutEmailClaim, PutUser, StoredUser, WriteMark
from shared.domain.user_import import ImportPlan
from shared.domain.validation import validate_user

NOW = "2026-12-03T00:00:00.000Z"


def run(rows, options=ImportOptions(), known_users=None, known_emails=None, job="job_a"):
    plan = ImportPlan(job, options)
    valid = [(i, validate_user(r)) for i, r in enumerate(rows)]
    lookup = plan.lookup_for(valid)
    users = {u: None for u in lookup.user_ids}
    users.update(known_users or {})
    emails = {e: None for e in lookup.email_keys}
    emails.update(known_emails or {})
    plan.learn(users, emails)
    plan.learn({o: (known_users or {}).get(o) for o in plan.owners_to_load().user_ids}, {})
    return plan, [plan.apply(i, r, NOW) for i, r in valid]


def stored(user_id, email=None, cf=None, md=None, mark=WriteMark("job_old", 0)):
    return StoredUser(user_id, email, cf or {}, md or {}, NOW, NOW, mark, mark)


def statuses(outcomes):
    return [(o.status, o.error.code if o.error else None) for o in outcomes]


def test_options_matrix_for_new_and_existing_users():
    existing = {"u1": stored("u1")}
    rows = [{"userId": "u1"}, {"userId": "u2"}]
    cases = {
        (True, False): [("updated", None), ("created", None)],
        (True, True): [("skipped", None), ("created", None)],
        (False, False): [("failed", "USER_EXISTS"), ("created", None)],
        (False, True): [("skipped", None), ("created", None)],
    }
    for (upsert, skip), expected in cases.items():
        _, outcomes = run(rows, ImportOptions(upsert=upsert, skipDuplicates=skip), existing)
        assert statuses(outcomes) == expected, (upsert, skip)


def test_same_user_twice_applies_in_order():
    rows = [{"userId": "u1", "customFields": {"a": "1"}}, {"userId": "u1", "customFields": {"b": "2"}}]
    for options, second in [
        (ImportOptions(), ("updated", None)),
        (ImportOptions(skipDuplicates=True), ("skipped", None)),
        (ImportOptions(upsert=False), ("failed", "USER_EXISTS")),
    ]:
        plan, outcomes = run(rows, options)
        assert statuses(outcomes) == [("created", None), second]
    plan, _ = run(rows)
    writes = plan.take_writes()
    assert len(writes) == 1  # one write per key, carrying both rows
    assert writes[0].write.user.custom_fields == {"a": "1", "b": "2"}
    assert writes[0].rows == {0, 1}


def test_update_merges_and_keeps_what_the_row_does_not_mention():
    existing = {"u1": stored("u1", "a@x.io", {"keep": "k", "c": "old"}, {"m": 1})}
    plan, outcomes = run([{"userId": "u1", "customFields": {"c": "new"}}], known_users=existing, known_emails={"a@x.io": "u1"})
    user = plan.take_writes()[0].write.user
    assert user.email == "a@x.io"
    assert user.custom_fields == {"keep": "k", "c": "new"}
    assert user.metadata == {"m": 1}
    assert user.created_by == WriteMark("job_old", 0)


def test_identity_by_email_is_case_insensitive_and_new_email_users_get_generated_ids():
    existing = {"u1": stored("u1", "Ann@x.io")}
    _, outcomes = run([{"email": "ANN@X.IO"}, {"email": "new@x.io"}], known_users=existing, known_emails={"ann@x.io": "u1"})
    assert (outcomes[0].status, outcomes[0].user_id) == ("updated", "u1")
    assert outcomes[1].status == "created" and outcomes[1].user_id.startswith("usr_")


def test_identity_conflict_when_email_belongs_to_another_user():
    existing = {"u1": stored("u1", "ann@x.io")}
    _, outcomes = run([{"userId": "u2", "email": "Ann@x.io"}], known_users=existing, known_emails={"ann@x.io": "u1"})
    assert statuses(outcomes) == [("failed", "IDENTITY_CONFLICT")]


def test_changing_email_moves_the_claim():
    existing = {"u1": stored("u1", "old@x.io")}
    plan, outcomes = run([{"userId": "u1", "email": "new@x.io"}], known_users=existing, known_emails={"old@x.io": "u1"})
    writes = {type(w.write) for w in plan.take_writes()}
    assert writes == {PutUser, PutEmailClaim, DeleteEmailClaim}
    assert plan.email_owners == {"old@x.io": None, "new@x.io": "u1"}


def test_a_redelivered_import_recognises_its_own_rows():
    rows = [{"userId": "u1"}, {"email": "e@x.io"}, {"userId": "u1", "customFields": {"x": "1"}}]
    first_plan, first = run(rows)
    written = {w.write.user.user_id: w.write.user for w in first_plan.take_writes() if isinstance(w.write, PutUser)}
    claims = {"e@x.io": first[1].user_id}
    again_plan, again = run(rows, known_users=written, known_emails=claims)
    assert statuses(again) == statuses(first) == [("created", None), ("created", None), ("updated", None)]
    assert [o.user_id for o in again] == [o.user_id for o in first]
    assert again_plan.take_writes() == []  # nothing is written twice


def test_a_plan_that_knows_the_whole_org_asks_for_nothing_more():
    plan = ImportPlan("job_a", ImportOptions())
    plan.learn_all({"u1": stored("u1", "a@x.io")}, {"a@x.io": "u1"})
    rows = [(0, validate_user({"userId": "u1"})), (1, validate_user({"userId": "u2", "email": "b@x.io"}))]
    assert not plan.lookup_for(rows)
    assert statuses([plan.apply(i, r, NOW) for i, r in rows]) == [("updated", None), ("created", None)]


def test_each_write_knows_how_to_put_its_key_back_as_it_was_before_the_chunk():
    existing = {"x": stored("x", "a@x.io")}
    plan, _ = run([{"userId": "x", "email": "b@x.io"}, {"userId": "x", "email": "a@x.io"}, {"userId": "n", "email": "n@x.io"}],
                  known_users=existing, known_emails={"a@x.io": "x", "b@x.io": None})
    undo = {w.write.key: w.undo for w in plan.take_writes()}
    assert undo == {
        ("user", "x"): PutUser(existing["x"]), ("email", "a@x.io"): PutEmailClaim("a@x.io", "x"), ("email", "b@x.io"): DeleteEmailClaim("b@x.io"),
        ("user", "n"): DeleteUser("n"), ("email", "n@x.io"): DeleteEmailClaim("n@x.io"),
    }


def test_a_redelivery_claims_the_email_of_a_user_whose_claim_never_landed():
    # A crash landed the new user x (row 0) but not its claim on a: the re-delivery recognises
    # row 0 and writes only the claim; a claim another user really holds is left alone.
    rows = [{"userId": "x", "email": "a@x.io"}, {"userId": "y", "email": "b@x.io"}]
    first_plan, first = run(rows)
    stored_users = {w.write.user.user_id: w.write.user for w in first_plan.take_writes() if isinstance(w.write, PutUser)}
    plan, again = run(rows, known_users={**stored_users, "z": stored("z", "b@x.io")}, known_emails={"a@x.io": None, "b@x.io": "z"})
    assert statuses(again) == statuses(first)
    # The user goes with its claim again, taken back out (as on a first delivery) if the claim is refused.
    writes = {w.write.key: (w.write, w.undo, w.rows) for w in plan.take_writes()}
    assert writes == {
        ("email", "a@x.io"): (PutEmailClaim("a@x.io", "x"), DeleteEmailClaim("a@x.io"), {0}),
        ("user", "x"): (PutUser(stored_users["x"]), DeleteUser("x"), {0}),
    }


def test_a_redelivery_does_not_release_an_email_another_user_of_the_import_holds_now():
    # u1 gives e1 up (row 0) and a new email-only user takes it (rows 1, 2). A crash landed the new
    # user and the claims, not u1: on re-delivery u1 still says e1, but the claim names g now.
    rows = [{"userId": "u1", "email": "e2@x.io"}, {"email": "e1@x.io"}, {"email": "e1@x.io", "customFields": {"k": 1}}]
    u1 = stored("u1", "e1@x.io")
    first_plan, first = run(rows, known_users={"u1": u1}, known_emails={"e1@x.io": "u1"})
    stored_users = {w.write.user.user_id: w.write.user for w in first_plan.take_writes() if isinstance(w.write, PutUser)}
    g = first[1].user_id
    plan, again = run(rows, known_users={"u1": u1, g: stored_users[g]}, known_emails={"e1@x.io": g, "e2@x.io": "u1"})
    assert statuses(again) == statuses(first) == [("updated", None), ("created", None), ("updated", None)]
    assert [o.user_id for o in again] == [o.user_id for o in first]
    assert {w.write.key for w in plan.take_writes()} == {("user", "u1"), ("email", "e2@x.io")}  # e1 stays g's


def test_a_redelivery_reports_rows_as_first_applied_even_after_later_rows_moved_emails():
    rows = [{"userId": "x", "email": "a@x.io"}, {"userId": "x", "email": "b@x.io"}, {"userId": "y", "email": "a@x.io"}]
    first_plan, first = run(rows)
    stored_users = {w.write.user.user_id: w.write.user for w in first_plan.take_writes() if isinstance(w.write, PutUser)}
    _, again = run(rows, known_users=stored_users, known_emails={"a@x.io": "y", "b@x.io": "x"})
    assert statuses(again) == statuses(first) == [("created", None), ("updated", None), ("created", None)]


def test_a_stale_claim_counts_as_free():
    # x moved from a to b but the release of a never landed: a still names x, whose record says b.
    existing = {"x": stored("x", "b@x.io")}
    _, outcomes = run([{"userId": "y", "email": "a@x.io"}, {"email": "A@x.io", "customFields": {"k": 1}}],
                      known_users=existing, known_emails={"a@x.io": "x", "b@x.io": "x"})
    assert statuses(outcomes) == [("created", None), ("updated", None)]
    assert outcomes[1].user_id == "y"


def test_the_keys_a_chunk_depends_on_include_the_holders_of_its_emails():
    plan = ImportPlan("job_a", ImportOptions())
    plan.learn({"u1": stored("u1", "a@x.io")}, {"a@x.io": "u1", "new@x.io": None})
    rows = [(0, validate_user({"email": "A@x.io"})), (1, validate_user({"userId": "u2", "email": "new@x.io"})), (2, validate_user({"userId": "u3"}))]
    assert plan.keys_read_by(rows) == {("email", "a@x.io"), ("user", "u1"), ("user", "u2"), ("email", "new@x.io"), ("user", "u3")}


def test_a_redelivery_claims_a_lost_email_even_when_a_later_row_wrote_the_user_last():
    # Row 0 creates u9 with e9, row 1 (email-only, e9) updates it: u9's last write is row 1. A crash
    # landed u9 but not the claim on e9. Row 0 is recognised and must claim e9 for u9, or row 1
    # would find e9 free and create a second user with it.
    rows = [{"userId": "u9", "email": "e9@x.io"}, {"email": "e9@x.io", "customFields": {"a": "1"}}]
    first_plan, first = run(rows)
    stored_users = {w.write.user.user_id: w.write.user for w in first_plan.take_writes() if isinstance(w.write, PutUser)}
    assert list(stored_users) == ["u9"] and stored_users["u9"].last_write.row == 1
    plan, again = run(rows, known_users=stored_users, known_emails={"e9@x.io": None})
    assert statuses(again) == statuses(first) == [("created", None), ("updated", None)]
    assert [o.user_id for o in again] == ["u9", "u9"]
    assert [(w.write, w.rows) for w in plan.take_writes()] == [(PutEmailClaim("e9@x.io", "u9"), {0})]
