"""The user store's records and the writes an import makes to it."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool

RowStatus = Literal["created", "updated", "skipped", "failed"]

# Deterministic ids make a re-delivered import give the same new users the same ids.
_GENERATED_ID_NAMESPACE = uuid.UUID("6a0c3c5e-1f7e-4a51-9f0b-4b2a7f3c9d21")


class ImportOptions(BaseModel):
    """The request's `options` object (contract defaults). Strict: `"true"` is not a boolean."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upsert: StrictBool = True
    skipDuplicates: StrictBool = False
    sendWelcomeEmail: StrictBool = False


@dataclass(frozen=True, order=True)
class WriteMark:
    """Which row of which import last wrote a record: lets a re-delivered import recognise its own work."""

    job_ref: str
    row: int


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    email: str | None
    custom_fields: dict[str, Any]
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    created_by: WriteMark
    last_write: WriteMark


@dataclass(frozen=True)
class PutUser:
    user: StoredUser

    @property
    def key(self) -> tuple[str, str]:
        return ("user", self.user.user_id)


@dataclass(frozen=True)
class PutEmailClaim:
    """Emails are unique within an org: a claim record maps the lower-cased email to its user."""

    email_key: str
    user_id: str

    @property
    def key(self) -> tuple[str, str]:
        return ("email", self.email_key)


@dataclass(frozen=True)
class DeleteEmailClaim:
    email_key: str

    @property
    def key(self) -> tuple[str, str]:
        return ("email", self.email_key)


@dataclass(frozen=True)
class DeleteUser:
    """Only to take back a user created in a chunk whose rows failed."""

    user_id: str

    @property
    def key(self) -> tuple[str, str]:
        return ("user", self.user_id)


Write = PutUser | PutEmailClaim | DeleteEmailClaim | DeleteUser


@dataclass
class PendingWrite:
    """The last write planned for one key, every row whose outcome depends on it, and the write
    that puts the key back as it was before this chunk (if one of those rows fails)."""

    write: Write
    undo: Write
    rows: set[int] = field(default_factory=set)

    @property
    def adds_record(self) -> bool:
        """The key held nothing before this chunk and will hold a record after it."""
        return isinstance(self.undo, (DeleteUser, DeleteEmailClaim)) and isinstance(self.write, (PutUser, PutEmailClaim))


def generated_user_id(job_ref: str, row: int) -> str:
    return "usr_" + str(uuid.uuid5(_GENERATED_ID_NAMESPACE, f"{job_ref}#{row}"))
