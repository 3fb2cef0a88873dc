import json

import pytest

from shared.adapters.user_store import stored_user, user_item
from shared.domain.model import StoredUser, WriteMark


@pytest.mark.parametrize("value", ["", "ü", 0, -3, 2.5, 1e20, 10**37, True, False, None, [1, "a", None], {"a": {"b": [True]}}, {}])
def test_profile_values_survive_the_round_trip(value):
    user = StoredUser("u1", None, {"f": value}, {"m": value}, "t0", "t1", WriteMark("job_a", 0), WriteMark("job_a", 0))
    restored = stored_user(user_item("org", user))
    assert restored == user
    assert type(restored.custom_fields["f"]) is type(value)


def test_a_user_record_survives_the_round_trip_and_is_keyed_by_org_and_user():
    user = StoredUser("u1", "A@x.io", {"n": 1, "s": "x"}, {"m": [1, 2]}, "t0", "t1", WriteMark("job_a", 3), WriteMark("job_b", 7))
    item = user_item("org", user)
    assert stored_user(item) == user
    assert set(item) == {"orgId", "key", "doc"}
    assert item["orgId"] == {"S": "org"} and item["key"] == {"S": "user#u1"}
    assert json.loads(item["doc"]["S"])["v"] == 1
