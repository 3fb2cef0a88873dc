"""Identity, the options matrix and the update merge: how one valid row changes the user store.

`ImportPlan` holds what is known of the store for one import, applies rows in input order
over it (so the same user twice behaves as if the first row had been imported before), and
collects the resulting writes, one per key.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .model import (
    DeleteEmailClaim,
    DeleteUser,
    ImportOptions,
    PendingWrite,
    PutEmailClaim,
    PutUser,
    RowStatus,
    StoredUser,
    Write,
    WriteMark,
    generated_user_id,
)
from .validation import RowError, UserRow


@dataclass(frozen=True)
class RowOutcome:
    index: int
    status: RowStatus
    user_id: Any
    email: Any
    error: RowError | None = None
    welcome: bool = False  # a new user with an email: a welcome email is owed if the import asked for it

    def as_result_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"index": self.index, "userId": self.user_id, "email": self.email, "status": self.status}
        if self.error is not None:
            row["error"] = self.error.as_dict()
        return row

    def as_record(self) -> dict[str, Any]:
        """The result row, and whether a welcome email is owed: what a re-delivery must replay."""
        return {**self.as_result_row(), "welcome": self.welcome}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "RowOutcome":
        error = RowError(**record["error"]) if "error" in record else None
        return cls(record["index"], record["status"], record["userId"], record["email"], error, record["welcome"])


def _echo(value: Any) -> Any:
    # A failed row reports what it sent; text that is not valid Unicode is shown with replacements.
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return value


def failed_row(index: int, raw: Any, error: RowError) -> RowOutcome:
    given = raw if isinstance(raw, dict) else {}
    return RowOutcome(index, "failed", _echo(given.get("userId")), _echo(given.get("email")), error)


@dataclass(frozen=True)
class Lookup:
    user_ids: frozenset[str]
    email_keys: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.user_ids or self.email_keys)


class ImportPlan:
    def __init__(self, job_ref: str, options: ImportOptions) -> None:
        self.job_ref = job_ref
        self.options = options
        self.users: dict[str, StoredUser | None] = {}
        self.email_owners: dict[str, str | None] = {}
        self._pending: dict[tuple[str, str], PendingWrite] = {}
        self._knows_everything = False

    def learn_all(self, users: dict[str, StoredUser | None], email_owners: dict[str, str | None]) -> None:
        """The whole org is known (it is small): what is not here does not exist."""
        self.learn(users, email_owners)
        self._knows_everything = True

    # -- what must be read from the store before rows can be applied --------------------------------
    def lookup_for(self, rows: list[tuple[int, UserRow]]) -> Lookup:
        """First round: the users rows name and the emails they claim. A new email-only user's
        generated id needs no read: if an earlier delivery stored it, creating it again from the
        same row gives the same record."""
        user_ids: set[str] = set()
        email_keys: set[str] = set()
        for _, row in rows:
            if row.user_id is not None:
                user_ids.add(row.user_id)
            if row.email_key is not None:
                email_keys.add(row.email_key)
        lookup = Lookup(frozenset(user_ids - self.users.keys()), frozenset(email_keys - self.email_owners.keys()))
        if self._knows_everything:
            self.learn(dict.fromkeys(lookup.user_ids), dict.fromkeys(lookup.email_keys))
            return Lookup(frozenset(), frozenset())
        return lookup

    def owners_to_load(self) -> Lookup:
        """Second round: users found through an email claim but not read yet."""
        owners = {o for o in self.email_owners.values() if o is not None and o not in self.users}
        return Lookup(frozenset(owners), frozenset())

    def keys_read_by(self, rows: list[tuple[int, UserRow]]) -> set[tuple[str, str]]:
        """The store keys whose state decides these rows' outcomes (asked once their lookups are
        learnt): their users, their emails and those emails' holders."""
        keys: set[tuple[str, str]] = set()
        for _, row in rows:
            if row.user_id is not None:
                keys.add(("user", row.user_id))
            if row.email_key is not None:
                keys.add(("email", row.email_key))
                owner = self.email_owners.get(row.email_key)
                if owner is not None:
                    keys.add(("user", owner))
        return keys

    def learn(self, users: dict[str, StoredUser | None], email_owners: dict[str, str | None]) -> None:
        self.users.update(users)
        self.email_owners.update(email_owners)

    def forget(self, key: tuple[str, str]) -> None:
        """A write failed: what we believed about this key is unknown again."""
        kind, name = key
        (self.users if kind == "user" else self.email_owners).pop(name, None)

    # -- applying rows -----------------------------------------------------------------------------
    def apply(self, index: int, row: UserRow, now: str) -> RowOutcome:
        mark = WriteMark(self.job_ref, index)
        if row.user_id is not None:
            user_id = row.user_id
            # A re-delivery is recognised before identity is checked: later rows of this import may
            # have moved emails since, and the row's first outcome is the one to report.
            owner = self._owner(row.email_key) if row.email_key is not None else None
            if owner is not None and owner != user_id and not self._applied(self.users.get(user_id), index):
                error = RowError("IDENTITY_CONFLICT", f"email belongs to another user ({owner})", "email")
                return RowOutcome(index, "failed", row.user_id, row.email, error)
        else:
            user_id = self._owner(row.email_key) or generated_user_id(self.job_ref, index)

        existing = self.users.get(user_id)
        if self._applied(existing, index):
            # A re-delivery of this import: the row was applied before; report it, do not write again.
            if existing.email is not None:
                self._claim_if_lost(index, existing)
            status: RowStatus = "created" if existing.created_by == mark else "updated"
            return RowOutcome(index, status, user_id, existing.email, welcome=status == "created" and existing.email is not None)
        if existing is None:
            user = StoredUser(user_id, row.email, row.custom_fields, row.metadata, now, now, mark, mark)
            self._write_user(index, None, user)
            return RowOutcome(index, "created", user_id, row.email, welcome=row.email is not None)
        if self.options.skipDuplicates:
            return RowOutcome(index, "skipped", user_id, existing.email)
        if not self.options.upsert:
            error = RowError("USER_EXISTS", "user already exists and upsert is false", "userId" if row.user_id else "email")
            return RowOutcome(index, "failed", row.user_id, row.email, error)
        user = merge(existing, row, now, mark)
        self._write_user(index, existing, user)
        return RowOutcome(index, "updated", user_id, user.email)

    def _owner(self, email_key: str) -> str | None:
        """Who holds this email. A claim whose user (when known) does not have that email is stale,
        left by a release that failed, and counts as free: the user record is the truth."""
        owner = self.email_owners.get(email_key)
        if owner is not None and owner in self.users:
            user = self.users[owner]
            if user is None or user.email is None or user.email.lower() != email_key:
                return None
        return owner

    def _applied(self, user: StoredUser | None, index: int) -> bool:
        """This import already wrote this user at this row or later (an earlier delivery of it)."""
        return user is not None and user.last_write.job_ref == self.job_ref and user.last_write.row >= index

    def _claim_if_lost(self, index: int, user: StoredUser) -> None:
        """A crash can land a new user without its email claim (they are written side by side):
        the re-delivery that recognises any of its rows claims the stored email for it, if nobody
        else holds it. A user whose last row created it goes with the claim again, so that if the
        claim is refused the user is taken back out, as on a first delivery."""
        key = user.email.lower()
        if key in self.email_owners and self.email_owners[key] != user.user_id and self._owner(key) is None:
            self._plan(index, PutEmailClaim(key, user.user_id))
            self.email_owners[key] = user.user_id
            if user.created_by == user.last_write:
                self._plan(index, PutUser(user), undo=DeleteUser(user.user_id))

    def _write_user(self, index: int, before: StoredUser | None, after: StoredUser) -> None:
        self._plan(index, PutUser(after))
        self.users[after.user_id] = after
        old_key = before.email.lower() if before is not None and before.email is not None else None
        new_key = after.email.lower() if after.email is not None else None
        if new_key != old_key:
            # The old claim is released only if it names this user: after a crash, another user
            # of this import may hold it already, and that claim must stay.
            if old_key is not None and self.email_owners.get(old_key, after.user_id) == after.user_id:
                self._plan(index, DeleteEmailClaim(old_key))
                self.email_owners[old_key] = None
            if new_key is not None:
                self._plan(index, PutEmailClaim(new_key, after.user_id))
                self.email_owners[new_key] = after.user_id

    def _plan(self, index: int, write: Write, undo: Write | None = None) -> None:
        """Called before the plan's own view of the key changes: the first write of a key in a
        chunk records how to put it back as it was (unless told otherwise)."""
        if write.key not in self._pending:
            self._pending[write.key] = PendingWrite(write, undo or self._as_it_is(write.key))
        pending = self._pending[write.key]
        pending.write = write  # the last write for a key carries every earlier row's effect
        pending.rows.add(index)

    def _as_it_is(self, key: tuple[str, str]) -> Write:
        kind, name = key
        if kind == "user":
            user = self.users.get(name)
            return PutUser(user) if user is not None else DeleteUser(name)
        owner = self.email_owners.get(name)
        return PutEmailClaim(name, owner) if owner is not None else DeleteEmailClaim(name)

    def take_writes(self) -> list[PendingWrite]:
        """The writes planned since the last call: at most one per key."""
        writes, self._pending = list(self._pending.values()), {}
        return writes


def merge(existing: StoredUser, row: UserRow, now: str, mark: WriteMark) -> StoredUser:
    """Fields the row does not mention are kept; customFields and metadata merge key by key."""
    return StoredUser(
        user_id=existing.user_id,
        email=row.email if row.email is not None else existing.email,
        custom_fields={**existing.custom_fields, **row.custom_fields},
        metadata={**existing.metadata, **row.metadata},
        created_at=existing.created_at,
        updated_at=now,
        created_by=existing.created_by,
        last_write=mark,
    )
