"""The HTTP edge both REST services share: envelopes, error mapping, the caller from the headers."""
from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .adapters.aws import ServerUnavailable
from .api import ApiError, ErrorEnvelope
from .auth import AuthError, Caller, TokenVerifier
from .settings import CommonSettings

log = structlog.get_logger()
_STATUS_CODES = {400: "VALIDATION_ERROR", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def ok(data: Any, status: int = 200) -> JSONResponse:
    payload = data.model_dump(mode="json") if hasattr(data, "model_dump") else data
    return JSONResponse({"success": True, "data": payload}, status_code=status)


def error(status: int, code: str, message: str, details: list[Any] | None = None) -> JSONResponse:
    return JSONResponse(ApiError(status, code, message, details).envelope(), status_code=status)


def install_error_envelopes(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(AuthError)
    async def _auth_error(_: Request, exc: AuthError) -> JSONResponse:
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(ServerUnavailable)
    async def _unavailable(_: Request, exc: ServerUnavailable) -> JSONResponse:
        log.error("server unavailable", error=str(exc))
        return error(503, "SERVICE_UNAVAILABLE", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, _STATUS_CODES.get(exc.status_code, "ERROR"), str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(400, "VALIDATION_ERROR", "invalid request", [str(e) for e in exc.errors()])

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error(500, "INTERNAL_ERROR", "internal error; see the service log")


def token_verifier(settings: CommonSettings) -> TokenVerifier:
    return TokenVerifier(settings.jwt_algorithm, settings.jwt_secret, settings.jwt_public_key_file)


def caller_of(request: Request, verifier: TokenVerifier) -> Caller:
    caller = verifier.caller(request.headers.get("authorization"), request.headers.get("x-org-id"))
    structlog.contextvars.bind_contextvars(orgId=caller.org_id)
    return caller


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": code}
    for status, code in {400: "VALIDATION_ERROR / INVALID_JSON / TOO_MANY_USERS", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                         503: "SERVICE_UNAVAILABLE (a server is unreachable; the message names it)"}.items()
}
