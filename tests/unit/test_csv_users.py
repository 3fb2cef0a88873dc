import pytest

from bulkops.csv_users import CsvHeaderError, parse_users_csv


def test_columns_bom_crlf_quotes_and_blank_lines():
    data = '\ufeffuserId,email,customFields.city,metadata.src\r\nu1,a@x.io,"Oslo, N",crm\r\n\r\n,b@x.io,"two\nlines",\r\n'.encode()
    parsed = parse_users_csv(data)
    assert parsed.errors == []
    assert [(u.line, u.user) for u in parsed.users] == [
        (2, {"userId": "u1", "email": "a@x.io", "customFields": {"city": "Oslo, N"}, "metadata": {"src": "crm"}}),
        (4, {"email": "b@x.io", "customFields": {"city": "two\nlines"}}),
    ]


def test_bad_lines_are_reported_with_their_numbers():
    data = b'userId,email\nu1,a@x.io\nu2,b@x.io,extra\nu3\n\xff\xfe,c@x.io\nu4,d@x.io\n'
    parsed = parse_users_csv(data)
    assert [u.user["userId"] for u in parsed.users] == ["u1", "u4"]
    assert [e.line for e in parsed.errors] == [3, 4, 5]


def test_unterminated_quote_is_reported():
    parsed = parse_users_csv(b'userId,email\nu1,"a@x.io\n')
    assert parsed.users == [] and parsed.errors[0].line == 2


@pytest.mark.parametrize("header", [b"", b"name,email\n", b"userId,userId\n", b"customFields.,email\n"])
def test_unusable_headers_stop_everything(header):
    with pytest.raises(CsvHeaderError):
        parse_users_csv(header)


def test_the_sample_file_parses_completely():
    from pathlib import Path

    parsed = parse_users_csv((Path(__file__).parents[2] / "data" / "users-10k.csv").read_bytes())
    assert len(parsed.users) == 10_000 and parsed.errors == []
