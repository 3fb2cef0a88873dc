import pytest

from shared.domain.validation import RowError, UserRow, validate_user

DEEP: list = [1]
for _ in range(40):
    DEEP = [DEEP]


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
        ({"email": "dup@x.com\n"}, "INVALID_EMAIL"),
        ({"email": "a" * 250 + "@x.com"}, "INVALID_EMAIL"),
        ({"userId": "bad\ud800"}, "INVALID_USER_ID"),
        ({"userId": "u1", "customFields": {"": 1}}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": {"k": ["ok", {"deep": "bad\udc00"}]}}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "metadata": {"bad\ud800": 1}}, "INVALID_METADATA"),
        ({"userId": "u1", "customFields": {"n": float("inf")}}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "customFields": {"n": 10**40 + 1}}, "INVALID_CUSTOM_FIELDS"),
        ({"userId": "u1", "metadata": {"n": 1e-131}}, "INVALID_METADATA"),
        ({"userId": "u1", "metadata": {"deep": DEEP}}, "INVALID_METADATA"),
        ({"userId": "u1", "customFields": {"s": "x" * 350_001}}, "INVALID_CUSTOM_FIELDS"),
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


def test_request_level_json_that_python_cannot_hold_is_invalid_json():
    from shared.api import ApiError, parse_import_request

    for body in (b'{"users": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"users": [NaN]}'):
        try:
            parse_import_request(body)
        except ApiError as exc:
            assert (exc.status, exc.code) == (400, "INVALID_JSON")
        else:
            raise AssertionError("accepted")


def test_bodies_that_would_lose_or_guess_data_are_invalid_json():
    from shared.api import ApiError, parse_import_request

    for body in (b'{"users": [{"userId": "a"}], "users": [{"userId": "b"}]}', '{"users": [{"userId": "a"}]}'.encode("utf-16")):
        try:
            parse_import_request(body)
        except ApiError as exc:
            assert (exc.status, exc.code) == (400, "INVALID_JSON")
        else:
            raise AssertionError(f"accepted {body!r}")
    assert len(parse_import_request(b'\xef\xbb\xbf{"users": [{"userId": "a"}]}').users) == 1  # a UTF-8 BOM is fine
