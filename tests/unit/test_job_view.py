from shared.domain.job_view import project
from shared.events import Counts, ErrorInfo, ImportCompleted, ImportFailed, ImportProgress, ImportRequested, ImportStarted, ObjectLocation

JOB = dict(jobId="job_00000000-0000-0000-0000-000000000001", orgId="o", totalRecords=10, createdAt="2026-12-01T00:00:00.000Z")
T = "2026-12-01T00:00:01.000Z"


def events():
    return {
        "requested": ImportRequested(**JOB, users=[{}] * 10),
        "started": ImportStarted(**JOB, startedAt=T),
        "p5": ImportProgress(**JOB, startedAt=T, counts=Counts(processed=5, created=5)),
        "p3": ImportProgress(**JOB, startedAt=T, counts=Counts(processed=3, created=3)),
        "done": ImportCompleted(**JOB, startedAt=T, completedAt=T, counts=Counts(processed=10, created=10), resultsLocation=ObjectLocation(bucket="b", key="k")),
        "failed": ImportFailed(**JOB, failedAt=T, error=ErrorInfo(code="X", message="m")),
    }


def fold(names):
    e, view = events(), None
    for name in names:
        view = project(view, e[name]) or view
    return view


def test_the_view_only_moves_forward():
    assert fold(["requested", "started", "p5", "p3"]).counts.processed == 5
    assert fold(["requested", "done", "p5", "started", "requested"]).status == "completed"
    assert fold(["done", "failed"]).status == "completed"
    assert fold(["p5", "requested"]).status == "processing"


def test_repeated_events_change_nothing():
    e = events()
    view = fold(["requested", "started", "p5"])
    assert project(view, e["p5"]) is None
    assert project(view, e["started"]) is None


def test_completed_view_has_counts_and_expiry():
    view = fold(["requested", "done"])
    assert view.counts.processed == view.totalRecords == 10
    assert view.expires_at.isoformat().startswith("2026-12-31")


def test_an_event_of_another_org_cannot_touch_a_job():
    view = fold(["requested", "started"])
    intruder = ImportFailed(**{**JOB, "orgId": "other"}, failedAt=T, error=ErrorInfo(code="X", message="m"))
    assert project(view, intruder) is None
