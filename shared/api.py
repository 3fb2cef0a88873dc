"""The REST API's schemas (version 1): the import request, the responses, the envelopes.

`parse_import_request` applies the contract's request-level rules to raw bytes; it is pure so
both the HTTP edge and the tests use exactly the same rules.
"""
from __future__ import annotations

import json
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from .domain.model import ImportOptions

MAX_USERS = 10_000
SYNC_LIMIT = 100  # fewer users than this are imported synchronously

T = TypeVar("T")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []

    def envelope(self) -> dict[str, Any]:
        return {"success": False, "error": {"code": self.code, "message": self.message, "details": self.details}}


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[Any] = []


class ErrorEnvelope(BaseModel):
    success: Literal[False] = False
    error: ErrorBody


class Envelope(BaseModel, Generic[T]):
    success: Literal[True] = True
    data: T


class ImportRequest(BaseModel):
    """POST /v1/bulk/users body. Each user is checked row by row later, so one bad row fails alone."""

    model_config = ConfigDict(extra="forbid")

    users: list[Any] = Field(
        min_length=1, max_length=MAX_USERS, description="user objects: userId and/or email, customFields, metadata"
    )
    options: ImportOptions = ImportOptions()


class RowErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ResultRow(BaseModel):
    index: int
    userId: Any = None
    email: Any = None
    status: Literal["created", "updated", "skipped", "failed"]
    error: RowErrorBody | None = Field(None, description="only on failed rows")

    @model_serializer(mode="wrap")
    def _error_only_when_failed(self, handler: SerializerFunctionWrapHandler):
        # The contract's result row has `error` only when the row failed (as in the results file).
        row = handler(self)
        if row.get("error") is None:
            row.pop("error", None)
        return row


class SyncImportResult(BaseModel):
    mode: Literal["sync"] = "sync"
    total: int
    created: int
    updated: int
    skipped: int
    failed: int
    results: list[ResultRow]


class AsyncImportAccepted(BaseModel):
    mode: Literal["async"] = "async"
    jobId: str
    status: Literal["pending"] = "pending"
    totalRecords: int
    statusUrl: str


class JobStatusBody(BaseModel):
    jobId: str
    status: Literal["pending", "processing", "completed", "failed"]
    totalRecords: int
    processed: int
    created: int
    updated: int
    skipped: int
    failed: int
    createdAt: str
    startedAt: str | None
    completedAt: str | None
    expiresAt: str
    downloadUrl: str | None
    downloadUrlExpiresAt: str | None
    error: RowErrorBody | None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:  # one of the two values would be silently dropped
            raise ValueError(f"the key {key!r} appears twice in one object")
        document[key] = value
    return document


def parse_import_request(body: bytes) -> ImportRequest:
    try:
        # UTF-8 only (a BOM is tolerated): json.loads on bytes would also guess UTF-16 or UTF-32.
        document = json.loads(body.decode("utf-8-sig"), parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(400, "INVALID_JSON", f"body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ApiError(400, "VALIDATION_ERROR", "body must be a JSON object with a users array")
    users = document.get("users")
    if not isinstance(users, list) or not users:
        raise ApiError(400, "VALIDATION_ERROR", "users must be a non-empty array", [{"field": "users"}])
    if len(users) > MAX_USERS:
        raise ApiError(400, "TOO_MANY_USERS", f"at most {MAX_USERS} users per request, got {len(users)}")
    try:
        return ImportRequest.model_validate(document)
    except ValidationError as exc:
        details = [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()]
        raise ApiError(400, "VALIDATION_ERROR", "invalid request: " + details[0]["field"] + ": " + details[0]["message"], details) from None
