"""The FastAPI application: the citizen pages, the staff JSON API under ``/api/v1``, ``/healthz`` and ``/metrics``.

:func:`create_app` builds it from a :class:`~adapters.bootstrap.Runtime`; nothing is opened at
import time. More routers (the citizen pages, the console) come in through ``routers``; they
reach the runtime, the views and the roster through :func:`adapters.http.services.services`
(``request.app.state.services``) and may add their own templates and static files to the app.

Every request gets an id, a log line and its metrics from :class:`adapters.http.requestlog.RequestLog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from adapters.bootstrap import Runtime
from adapters.foreground import Foreground
from adapters.http import api, cases, citizen, console, errors, ops, queries
from adapters.http.limits import API_BODY_LIMIT, CITIZEN_BODY_LIMIT, BodyLimit
from adapters.http.requestlog import RequestLog
from adapters.http.services import Services
from projections.runner import Runner
from projections.store import ViewStore
from scheduler.service import SchedulerService

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
    foreground: Foreground | None = None,
    runner: Runner | None = None,
) -> FastAPI:
    """The app on ``rt``: ``views`` shared with the process's projection runner (default: beside the
    events), ``scheduler`` the process's own (for health and metrics; None: not run here);
    ``foreground`` is told of every request in flight, for the process's background loops;
    ``runner`` the process's runner on ``views``, for requests to catch the views up with (None:
    one of the app's own)."""
    svc = Services(rt, views if views is not None else ViewStore.beside(rt.app), scheduler, runner)
    app = FastAPI(title="pingjing 评警", version=_version(), description=DESCRIPTION)
    app.state.services = svc
    metrics = ops.Metrics(svc, foreground)
    app.state.metrics = metrics
    rt.app.observers.append(metrics.observe_command)
    errors.install(app)
    app.mount("/static/citizen", StaticFiles(directory=citizen.STATIC), name="citizen-static")
    app.add_middleware(BodyLimit, limits=[("/s/", CITIZEN_BODY_LIMIT), ("/track/", CITIZEN_BODY_LIMIT)],
                       default=API_BODY_LIMIT)
    # Requests finish before the app shuts down; then the writer writes what it was handed and stops.
    app.router.add_event_handler("shutdown", svc.committer.stop)

    app.add_middleware(RequestLog, metrics=metrics, foreground=foreground)

    # The citizen pages and the probes first: the busiest routes are matched before the API's many.
    for router in (citizen.router(), ops.router(), api.router(), cases.router(), queries.router(), console.router(),
                   *routers):
        app.include_router(router)
    console.mount_static(app)
    return app
