import pytest

from shared.domain.validation import RowError, UserRow, validate_user


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ({}, "MISSING_IDENTIFIER"),
        ({"userId": None, "email": None}, "MISSING_IDENTIFIER"),
        ("alice@example.com", "MISSING_IDENTIFIER"),
        (None, "MISSING_IDENTIFIER"),
        ({"userId": ""}, "INVALID_USER_ID"),
        ({"userId": 42}, "INVALID_USER_ID"),
        ({"userId": "x" * 257}, "INVALID_USER_ID"),
        ({"email": "not-an-email"}, "INVALID_EMAIL"),
        ({"email": "a b@example.com"}, "INVALID_EMAIL"),
        ({"email": "a@example"}, "INVALID_EMAIL"),
        ({"email": 7}, "INVALID_EMAIL"),
        ({"userId": "u1", "customFields": "x"}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": []}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": None}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": 3}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": True}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "metadata": "x"}, "INVALID_METADATA"),
        ({"userId": "u1", "metadata": None}, "INVALID_METADATA"),
        ({"userId": "u1", "firstName": "Ann"}, "UNKNOWN_FIELD"),
    ],
)
def test_bad_rows_fail_with_the_contract_code(raw, code):
    result = validate_user(raw)
    assert isinstance(result, RowError)
    assert result.code == code


def test_codes_come_in_the_contract_order():
    # Both userId and email are bad: the userId error is reported first.
    assert validate_user({"userId": "", "email": "bad"}).code == "INVALID_USER_ID"
    assert validate_user({"email": "bad", "customFields": "x"}).code == "INVALID_EMAIL"
    assert validate_user({"userId": "u", "customFields": 1, "metadata": 1}).code == "INVALID_CUSTOM_FIELDS"


def test_a_valid_row_keeps_what_it_mentions():
    row = validate_user({"userId": "u1", "email": "Ann@Example.com", "customFields": {"a": 1}, "metadata": {"m": "x"}})
    assert row == UserRow("u1", "Ann@Example.com", {"a": 1}, {"m": "x"})
    assert row.email_key == "ann@example.com"
    assert validate_user({"userId": "x" * 256}).user_id == "x" * 256
