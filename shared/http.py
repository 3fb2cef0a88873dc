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

    _document_400_not_422(app)


def _document_400_not_422(app: FastAPI) -> None:
    """FastAPI documents 422 for any route with parameters; request validation errors are answered
    400 VALIDATION_ERROR here (above), so the OpenAPI description must not promise a 422."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = schema.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def token_verifier(settings: CommonSettings) -> TokenVerifier:
    return TokenVerifier(settings.jwt_algorithm, settings.jwt_secret, settings.jwt_public_key_file)


def caller_of(request: Request, verifier: TokenVerifier) -> Caller:
    caller = verifier.caller(request.headers.get("authorization"), request.headers.get("x-org-id"))
    structlog.contextvars.bind_contextvars(orgId=caller.org_id)
    return caller


def error_responses(descriptions: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses: each with the error envelope and its codes."""
    return {status: {"model": ErrorEnvelope, "description": text} for status, text in descriptions.items()}


# The errors every endpoint can answer (auth, a missing X-Org-ID, an unreachable server).
COMMON_ERRORS = {
    400: "VALIDATION_ERROR (X-Org-ID missing)",
    401: "UNAUTHORIZED (token missing, invalid or expired)",
    403: "FORBIDDEN (role not admin/super_admin, or an admin naming another org)",
    503: "SERVICE_UNAVAILABLE (a server is unreachable; the message names it)",
}
ERROR_RESPONSES = error_responses(COMMON_ERRORS)
