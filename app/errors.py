"""One error hierarchy, mapped to RFC 9457 problem responses in one place.

Services raise ``AppError`` subclasses; nothing else builds an error response.
No problem body ever carries a stack trace, SQL, or another administration's data.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.jsonenc import dumps

log = logging.getLogger("relay.errors")

PROBLEM_JSON = "application/problem+json"


class AppError(Exception):
    """Base of every error a service may raise; ``status`` and ``slug`` pick the problem."""

    status: int = 500
    title: str = "Internal Server Error"
    slug: str = "internal"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None):
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }


class BadRequest(AppError):
    status, title, slug = 400, "Bad Request", "bad-request"


class Unauthorized(AppError):
    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str = "A valid API key is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="relay"'})


class Forbidden(AppError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(AppError):
    status, title, slug = 404, "Not Found", "not-found"


class MethodNotAllowed(AppError):
    status, title, slug = 405, "Method Not Allowed", "method-not-allowed"


class Conflict(AppError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(AppError):
    status, title, slug = 412, "Precondition Failed", "precondition-failed"


class PayloadTooLarge(AppError):
    status, title, slug = 413, "Content Too Large", "payload-too-large"


class UnsupportedMediaType(AppError):
    status, title, slug = 415, "Unsupported Media Type", "unsupported-media-type"


class Unprocessable(AppError):
    """422 with the ``errors`` list of section 1."""

    status, title, slug = 422, "Unprocessable Content", "validation"

    def __init__(self, detail: str, *, errors: Iterable[tuple[Iterable[str | int], str]] = ()):
        super().__init__(detail)
        self.errors = [{"loc": list(loc), "msg": msg} for loc, msg in errors]
        if not self.errors:
            self.errors = [{"loc": ["body"], "msg": detail}]

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": self.errors}


class TooManyRequests(AppError):
    status, title, slug = 429, "Too Many Requests", "rate-limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Request rate limit exceeded for this key", headers={"Retry-After": str(retry_after)}
        )


class ServiceUnavailable(AppError):
    status, title, slug = 503, "Service Unavailable", "unavailable"

    def __init__(self, detail: str = "The store is unreachable or busy; retry shortly") -> None:
        super().__init__(detail, headers={"Retry-After": "2"})


def problem_response(error: AppError) -> Response:
    return Response(
        dumps(error.body()),
        status_code=error.status,
        headers=error.headers,
        media_type=PROBLEM_JSON,
    )


_KNOWN: dict[int, tuple[str, str]] = {
    cls.status: (cls.title, cls.slug)
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
    )
}


def _validation_message(error: Mapping[str, Any]) -> str:
    # pydantic's messages never echo the input; ``ctx`` may, so it is left out.
    return str(error.get("msg", "invalid value"))


def from_validation_errors(errors: Iterable[Mapping[str, Any]]) -> Unprocessable:
    pairs = [(error.get("loc", ()), _validation_message(error)) for error in errors]
    return Unprocessable("The request is not valid", errors=pairs)


def is_unavailable(exc: BaseException) -> bool:
    """True for errors that mean the store cannot answer now (down, timed out, locked)."""
    if isinstance(exc, PoolTimeoutError | TimeoutError | ConnectionError | OSError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        text = str(exc.orig).lower() if exc.orig is not None else ""
        return any(
            marker in text
            for marker in (
                "database is locked",
                "connection",
                "terminat",
                "timeout",
                "timed out",
                "shutting down",
                "starting up",
                "too many clients",
                "disk i/o",
            )
        )
    return False


def _allowed_methods(app: FastAPI, path: str) -> set[str]:
    methods: set[str] = set()
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods |= {method.upper() for method in operations}
    return methods


def install_error_handlers(app: FastAPI) -> None:
    """Map every error the app can raise to a problem response."""

    async def on_app_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, AppError)
        return problem_response(exc)

    async def on_validation(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return problem_response(from_validation_errors(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code = exc.status_code
        error = AppError(str(exc.detail) if exc.detail else None, headers=exc.headers)
        if code == 405 and (methods := _allowed_methods(app, request.url.path)):
            # Starlette names only the first matching route's methods; RFC 9110 wants all.
            error.headers["Allow"] = ", ".join(sorted(methods))
        error.status = code
        error.title, error.slug = _KNOWN.get(code, (HTTPStatus(code).phrase, "http"))
        if error.detail == "Internal Server Error" or not exc.detail:
            error.detail = error.title
        return problem_response(error)

    async def on_store_error(request: Request, exc: Exception) -> Response:
        # Registered per class so the exception middleware answers (the catch-all below
        # answers too, but Starlette re-raises from there and logs a traceback).
        if is_unavailable(exc):
            log.warning("store unavailable: %s", type(exc).__name__)
            return problem_response(ServiceUnavailable())
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        if is_unavailable(exc):
            return problem_response(ServiceUnavailable())
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(AppError("An unexpected error occurred"))

    app.add_exception_handler(AppError, on_app_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for store_error in (DBAPIError, PoolTimeoutError, TimeoutError, OSError):
        app.add_exception_handler(store_error, on_store_error)
    app.add_exception_handler(Exception, on_unexpected)
