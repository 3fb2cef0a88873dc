"""Row-level validation of one user object, in the contract's order."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

EMAIL_PATTERN = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
MAX_USER_ID_LENGTH = 256
KNOWN_FIELDS = frozenset({"userId", "email", "customFields", "metadata"})


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


def validate_user(raw: Any) -> UserRow | RowError:
    if not isinstance(raw, dict) or not (_given(raw, "userId") or _given(raw, "email")):
        return RowError("MISSING_IDENTIFIER", "a user needs a userId or an email", "userId")
    user_id = raw.get("userId")
    if user_id is not None and (not isinstance(user_id, str) or not user_id or len(user_id) > MAX_USER_ID_LENGTH):
        return RowError(
            "INVALID_USER_ID", f"userId must be a non-empty string of at most {MAX_USER_ID_LENGTH} characters", "userId"
        )
    email = raw.get("email")
    if email is not None and (not isinstance(email, str) or not EMAIL_PATTERN.match(email)):
        return RowError("INVALID_EMAIL", "email is not a valid email address", "email")
    for name, code in (("customFields", "INVALID_CUSTOM_FIELDS"), ("metadata", "INVALID_METADATA")):
        if name in raw and not isinstance(raw[name], dict):
            return RowError(code, f"{name} must be an object", name)
    unknown = sorted(set(raw) - KNOWN_FIELDS)
    if unknown:
        # Never drop what the caller sent: an unknown field fails the row instead of vanishing.
        return RowError("UNKNOWN_FIELD", f"unknown field {unknown[0]!r}; put it under customFields or metadata", unknown[0])
    return UserRow(user_id, email, dict(raw.get("customFields") or {}), dict(raw.get("metadata") or {}))
