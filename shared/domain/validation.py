"""Row-level validation of one user object, in the contract's order."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

EMAIL_PATTERN = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")  # the contract's; applied with fullmatch
MAX_USER_ID_LENGTH = 256
MAX_EMAIL_LENGTH = 254  # RFC 5321; also keeps the email's key within DynamoDB's 1,024-byte limit
KNOWN_FIELDS = frozenset({"userId", "email", "customFields", "metadata"})
# What one stored user may hold. The record is one DynamoDB item (400 KB at most); its fields are
# kept within DynamoDB's typed limits too, so that any layout of the record (today one JSON
# document) can hold what was accepted. Checked here so that a row the store would refuse fails
# alone, with a reason, instead of taking its batch down with it.
MAX_FIELDS_BYTES = 350_000
MAX_DEPTH = 30
MAX_NUMBER = 9.9999999999999999999999999999999999999e125
MIN_NUMBER = 1e-130
MAX_NUMBER_DIGITS = 38
ORG_ID_PATTERN = re.compile(r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


@dataclass(frozen=True)
class RowError:
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "field": self.field}


@dataclass(frozen=True)
class UserRow:
    """A user object that passed validation. `None` means the row did not mention the field."""

    user_id: str | None
    email: str | None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def email_key(self) -> str | None:
        return self.email.lower() if self.email is not None else None


def _given(raw: dict[str, Any], name: str) -> bool:
    # JSON null counts as "not given": exports often write null for an empty column.
    return raw.get(name) is not None


def _text_ok(value: str) -> bool:
    try:
        value.encode("utf-8")  # lone surrogates (from \ud800 escapes) cannot be stored or sent
    except UnicodeEncodeError:
        return False
    return True


def _storable_problem(value: Any, depth: int = 0) -> str | None:
    """Why a stored user could not hold this JSON value, or None. Its text is checked whole, by
    `validate_user` when it encodes the field, which is cheaper than a check of every string."""
    if depth > MAX_DEPTH:
        return f"nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, str) or isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER or len(str(abs(value)).rstrip("0")) > MAX_NUMBER_DIGITS:
            return f"holds a number DynamoDB cannot store (over {MAX_NUMBER_DIGITS} digits or beyond 9.9e125)"
        return None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")) or not (value == 0 or MIN_NUMBER <= abs(value) <= MAX_NUMBER):
            return "holds a number out of range (1e-130 to 9.9e125)"
        return None
    if isinstance(value, list):
        return next((p for p in (_storable_problem(v, depth + 1) for v in value) if p), None)
    if isinstance(value, dict):
        for key, item in value.items():
            if not key:
                return "has an empty key"
            problem = _storable_problem(item, depth + 1)
            if problem:
                return problem
        return None
    return f"holds a {type(value).__name__}"


def validate_user(raw: Any) -> UserRow | RowError:
    if not isinstance(raw, dict) or not (_given(raw, "userId") or _given(raw, "email")):
        return RowError("MISSING_IDENTIFIER", "a user needs a userId or an email", "userId")
    user_id = raw.get("userId")
    if user_id is not None and (
        not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_LENGTH or not _text_ok(user_id)
    ):
        return RowError(
            "INVALID_USER_ID", f"userId must be a non-empty string of at most {MAX_USER_ID_LENGTH} characters", "userId"
        )
    email = raw.get("email")
    if email is not None and (
        not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(email) or not _text_ok(email)
    ):
        return RowError("INVALID_EMAIL", "email is not a valid email address", "email")
    size = 0
    for name, code in (("customFields", "INVALID_CUSTOM_FIELDS"), ("metadata", "INVALID_METADATA")):
        if name in raw and not isinstance(raw[name], dict):
            return RowError(code, f"{name} must be an object", name)
        value = raw.get(name) or {}
        problem = _storable_problem(value)
        if problem is None:
            try:
                size += len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
            except UnicodeEncodeError:  # lone surrogates, in a key or a value
                problem = "holds text that is not valid Unicode"
            else:
                problem = f"is larger than {MAX_FIELDS_BYTES} bytes (with the other field)" if size > MAX_FIELDS_BYTES else None
        if problem:
            return RowError(code, f"{name} {problem}", name)
    unknown = sorted(set(raw) - KNOWN_FIELDS)
    if unknown:
        # Never drop what the caller sent: an unknown field fails the row instead of vanishing.
        return RowError("UNKNOWN_FIELD", f"unknown field {unknown[0]!r}; put it under customFields or metadata", unknown[0])
    return UserRow(user_id, email, dict(raw.get("customFields") or {}), dict(raw.get("metadata") or {}))
