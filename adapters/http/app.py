"""The FastAPI application: the staff JSON API under ``/api/v1``, ``/healthz`` and ``/metrics``.

:func:`create_app` builds it from a :class:`~adapters.bootstrap.Runtime`; nothing is opened at
import time. More routers (the citizen pages, the console) come in through ``routers``; they
reach the runtime, the views and the roster through :func:`adapters.http.services.services`
(``request.app.state.services``) and may add their own templates and static files to the app.

Every request gets an id (``X-Request-ID``, taken from the request when it carries a sane one),
bound to the structured log and used as the correlation id of the use case it runs; one
``http_request`` log line per request, with the route template, never the query or a body.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

import structlog
from fastapi import APIRouter, FastAPI, Request, Response

from adapters.bootstrap import Runtime
from adapters.http import api, cases, errors, ops, queries
from adapters.http.services import Services
from projections.store import ViewStore
from scheduler.service import SchedulerService

log = structlog.get_logger("pingjing.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Routes probed often: their request lines are logged at debug level only.
_QUIET = frozenset({"/healthz", "/metrics"})

DESCRIPTION = """\
The staff API of pingjing 评警, the complaint-handling engine of the scan-to-rate programme.

Authenticate with `Authorization: Bearer <token>` (`pingjing token create --role ROLE --principal ID`).
Each route names the roles it lets in; the use cases check the role and the unit again.

Refusals are JSON `{"error": kind, "message": ...}`: 401 no or bad token, 403 role or unit,
404 unknown, 409 the state refuses the move (`illegal_move`), another rule (`rule_violation`),
a duplicate (`already_exists`) or a concurrent change (`conflict`), 422 bad input (with `fields`),
503 the store cannot be reached.
"""


def _version() -> str:
    try:
        return version("pingjing")
    except PackageNotFoundError:
        return "0"


def create_app(
    rt: Runtime,
    *,
    views: ViewStore | None = None,
    scheduler: SchedulerService | None = None,
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """The app on ``rt``: ``views`` shared with the process's projection runner (default: beside the
    events), ``scheduler`` the process's own (for health and metrics; None: not run here)."""
    svc = Services(rt, views if views is not None else ViewStore.beside(rt.app), scheduler)
    app = FastAPI(title="pingjing 评警", version=_version(), description=DESCRIPTION)
    app.state.services = svc
    metrics = ops.Metrics(svc)
    app.state.metrics = metrics
    rt.app.observers.append(metrics.observe_command)
    errors.install(app)

    @app.middleware("http")
    async def request_log(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        sent = request.headers.get("x-request-id", "")
        request_id = sent if _REQUEST_ID.match(sent) else uuid.uuid4().hex
        request.state.request_id = request_id
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            response = await call_next(request)
            seconds = time.perf_counter() - started
            # The route's template, never the concrete path (one series per route, not per case).
            route = getattr(request.scope.get("route"), "path", None)
            route = route or ("unmatched" if response.status_code == 404 else request.url.path)
            metrics.observe_request(route, request.method, response.status_code, seconds)
            staff = getattr(request.state, "staff", None)
            fields = {"method": request.method, "route": route, "status": response.status_code,
                      "ms": round(seconds * 1000, 2), "actor": str(staff.actor) if staff else None}
            if route in _QUIET:
                log.debug("http_request", **fields)
            else:
                log.info("http_request", **fields)
        response.headers["X-Request-ID"] = request_id
        return response

    for router in (api.router(), cases.router(), queries.router(), ops.router(), *routers):
        app.include_router(router)
    return app
