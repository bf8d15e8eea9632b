"""One JSON error shape for every error the HTTP API returns.

``{"code": 400, "type": "bad_request", "message": "...", "parameter": "$filter", "column": 9}``:
``parameter`` and ``column`` say where a query option is wrong, ``null`` otherwise.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

TYPES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    415: "unsupported_media_type",
    500: "internal_error",
    501: "not_implemented",
    503: "unavailable",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str, *, parameter: str | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.parameter = parameter
        self.column = column


def error_body(code: int, message: str, parameter: str | None = None, column: int | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "type": TYPES.get(code, "error"),
        "message": message,
        "parameter": parameter,
        "column": column,
    }


def error_response(
    code: int,
    message: str,
    parameter: str | None = None,
    column: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(error_body(code, message, parameter, column)),
        status_code=code,
        media_type="application/json",
        headers=headers,
    )


def install(app: FastAPI) -> None:
    """Route every error through :func:`error_response`."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc.code, exc.message, exc.parameter, exc.column)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = str(exc.detail) if exc.detail else TYPES.get(exc.status_code, "error")
        if exc.status_code == 404 and exc.detail == "Not Found":
            message = f"no resource at {request.url.path}"
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server log has details")
