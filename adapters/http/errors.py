"""Every refusal as JSON ``{"error": kind, "message": ...}``: the one place error classes get status codes.

==========================  ======  =====================
error                       status  ``error``
==========================  ======  =====================
a body that is not text     400     ``bad_request``
no, unknown, revoked token  401     ``unauthenticated``
PermissionDeniedError       403     ``permission_denied``
NotFoundError               404     ``not_found``
AlreadyExistsError          409     ``already_exists``
ConflictError               409     ``conflict``
IllegalMoveError            409     ``illegal_move``
RuleViolationError          409     ``rule_violation``
ValidationError, bad body   422     ``validation_error``
the store down, full, r/o   503     ``unavailable``
==========================  ======  =====================

A refused move conflicts with the state of what it would change (409); input that can never
be right is 422 and names the field. Nothing here ever sends a traceback.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import psycopg
import structlog
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adapters.store import store_trouble
from domain.errors import (
    AlreadyExistsError,
    ConflictError,
    IllegalMoveError,
    NotFoundError,
    PermissionDeniedError,
    PingjingError,
    RuleViolationError,
    ValidationError,
)

log = structlog.get_logger("pingjing.http")
#: What a 503 asks a client to wait before trying again.
RETRY_AFTER_SECONDS = 5

#: Status and ``error`` kind of each domain error (the most specific class first).
DOMAIN_ERRORS: tuple[tuple[type[PingjingError], int, str], ...] = (
    (PermissionDeniedError, 403, "permission_denied"),
    (NotFoundError, 404, "not_found"),
    (AlreadyExistsError, 409, "already_exists"),
    (ConflictError, 409, "conflict"),
    (IllegalMoveError, 409, "illegal_move"),
    (RuleViolationError, 409, "rule_violation"),
    (ValidationError, 422, "validation_error"),
)
_HTTP_KINDS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
}


class FieldErrorOut(BaseModel):
    """One field's problem: where (``["body", "note"]``), what, which kind."""

    loc: list[str]
    message: str
    type: str | None = None


class ErrorOut(BaseModel):
    """Every refusal: its kind and a message for people; some kinds say more."""

    error: str
    message: str
    #: 422: each field's problem.
    fields: list[FieldErrorOut] | None = None
    #: 409 ``illegal_move``: the case, its state and the move refused.
    case_ref: str | None = None
    state: str | None = None
    move: str | None = None
    #: 404, 409 ``already_exists``: what kind of thing.
    what: str | None = None


#: The refusals of every ``/api/v1`` route, for OpenAPI.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no token, or an unknown or revoked one"},
    403: {"model": ErrorOut, "description": "the role or the unit may not"},
    404: {"model": ErrorOut, "description": "unknown"},
    409: {"model": ErrorOut, "description": "the state or another rule refuses it, or a concurrent change"},
    422: {"model": ErrorOut, "description": "bad input, naming the field"},
    503: {"model": ErrorOut, "description": "the event store cannot be reached"},
}


class Unauthenticated(Exception):  # noqa: N818 - named for the answer it becomes (401), like the others
    """The request carries no token, or one that is unknown or revoked."""

    def __init__(self, message: str, *, invalid: bool) -> None:
        super().__init__(message)
        self.invalid = invalid


def error_body(kind: str, message: str, **extra: Any) -> dict[str, Any]:
    """The JSON of every refusal."""
    return {"error": kind, "message": message, **extra}


def domain_status(error: PingjingError) -> tuple[int, str]:
    """The status code and ``error`` kind of a domain error."""
    for cls, status, kind in DOMAIN_ERRORS:
        if isinstance(error, cls):
            return status, kind
    return 422, "refused"


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic's errors without the input echoed back or exception objects: where, what, which kind."""
    return [
        {"loc": [str(part) for part in e.get("loc", ())], "message": str(e.get("msg", "")), "type": e.get("type")}
        for e in errors
    ]


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(PingjingError)
    async def domain_error(request: Request, exc: PingjingError) -> JSONResponse:
        status, kind = domain_status(exc)
        extra: dict[str, Any] = {}
        if isinstance(exc, IllegalMoveError):
            extra = {"case_ref": exc.ref, "state": exc.state, "move": exc.move}
        elif isinstance(exc, NotFoundError | AlreadyExistsError):
            extra = {"what": exc.what}
        return JSONResponse(error_body(kind, str(exc), **extra), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _invalid(exc.errors())

    @app.exception_handler(PydanticValidationError)
    async def bad_command(request: Request, exc: PydanticValidationError) -> JSONResponse:
        return _invalid(exc.errors())

    @app.exception_handler(Unauthenticated)
    async def unauthenticated(request: Request, exc: Unauthenticated) -> JSONResponse:
        challenge = 'Bearer realm="pingjing"' + (', error="invalid_token"' if exc.invalid else "")
        return JSONResponse(
            error_body("unauthenticated", str(exc)), status_code=401, headers={"WWW-Authenticate": challenge}
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = _HTTP_KINDS.get(exc.status_code, "http_error")
        return JSONResponse(error_body(kind, str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        trouble = store_trouble(exc, request.app.state.services.rt.store.path)
        log.error("http_store_unavailable", error=type(exc).__name__, reason=str(exc)[:300], trouble=trouble)
        body = error_body("unavailable", f"{trouble}; nothing was written; try again later")
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    # The event store's errors, and the views' (read straight through the drivers).
    for error_class in (PersistenceError, sqlite3.Error, psycopg.Error):
        app.add_exception_handler(error_class, unavailable)


def _invalid(errors: Sequence[Any]) -> JSONResponse:
    fields = field_errors(errors)
    summary = "; ".join(f"{'.'.join(f['loc']) or 'body'}: {f['message']}" for f in fields[:10])
    return JSONResponse(error_body("validation_error", summary, fields=fields), status_code=422)
