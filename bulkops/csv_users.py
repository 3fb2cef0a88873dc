"""Reading a CSV export into user objects, the contract's way (pure: text in, rows and line errors out).

Columns: `userId`, `email`, `customFields.<key>`, `metadata.<key>`. An empty cell means the field
is absent. Blank lines are ignored. UTF-8 with or without BOM, CRLF or LF, RFC 4180 quoting.
A line that cannot be parsed becomes a `LineError`: reported, never sent, never silently dropped.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

NESTED_COLUMNS = ("customFields", "metadata")


@dataclass(frozen=True)
class CsvUser:
    line: int  # the line the record starts on (1 = header)
    user: dict[str, Any]


@dataclass(frozen=True)
class LineError:
    line: int
    message: str


@dataclass(frozen=True)
class CsvUsers:
    users: list[CsvUser]
    errors: list[LineError]


class CsvHeaderError(ValueError):
    """The header itself is unusable: nothing in the file can be imported safely."""


def _column_target(name: str) -> tuple[str, str | None]:
    if name in ("userId", "email"):
        return name, None
    prefix, dot, key = name.partition(".")
    if dot and key and prefix in NESTED_COLUMNS:
        return prefix, key
    raise CsvHeaderError(
        f"unknown column {name!r}: expected userId, email, customFields.<key> or metadata.<key>"
    )


def parse_users_csv(data: bytes) -> CsvUsers:
    # surrogateescape keeps undecodable bytes visible so the line holding them can be reported.
    text = data.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvHeaderError("the file is empty: a header row is required") from None
    except csv.Error as exc:
        raise CsvHeaderError(f"line 1: {exc}") from None
    if len(set(header)) != len(header):
        raise CsvHeaderError("the header names a column twice")
    targets = [_column_target(name) for name in header]

    users: list[CsvUser] = []
    errors: list[LineError] = []
    next_line = reader.line_num + 1
    while True:
        start = next_line
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            end = reader.line_num
            span = f" (lines {start}-{end} were read as this one record: check for an unclosed quote)" if end > start else ""
            errors.append(LineError(start, f"cannot parse: {exc}{span}"))
            next_line = reader.line_num + 1
            continue
        next_line = reader.line_num + 1
        if not cells or cells == [""] and len(header) > 1:
            continue  # a blank line
        if len(cells) != len(header):
            errors.append(LineError(start, f"has {len(cells)} fields, the header has {len(header)}"))
            continue
        if any("\udc80" <= ch <= "\udcff" for cell in cells for ch in cell):
            errors.append(LineError(start, "is not valid UTF-8"))
            continue
        user: dict[str, Any] = {}
        for (field, key), value in zip(targets, cells):
            if value == "":
                continue
            if key is None:
                user[field] = value
            else:
                user.setdefault(field, {})[key] = value
        users.append(CsvUser(start, user))
    return CsvUsers(users, errors)
