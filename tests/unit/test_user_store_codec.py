import pytest

from shared.adapters.user_store import from_attribute, stored_user, to_attribute, user_item
from shared.domain.model import StoredUser, WriteMark


@pytest.mark.parametrize("value", ["", "ü", 0, -3, 2.5, 1e20, True, False, None, [1, "a", None], {"a": {"b": [True]}}, {}])
def test_json_values_survive_the_round_trip(value):
    assert from_attribute(to_attribute(value)) == value


def test_a_user_record_survives_the_round_trip():
    user = StoredUser("u1", "A@x.io", {"n": 1, "s": "x"}, {"m": [1, 2]}, "t0", "t1", WriteMark("job_a", 3), WriteMark("job_b", 7))
    assert stored_user(user_item("org", user)) == user
    assert user_item("org", user)["key"] == {"S": "user#u1"}
