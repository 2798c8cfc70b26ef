"""Operations: ``/healthz`` for probes and ``/metrics`` for Prometheus; neither needs a token nor tells personal data.

``/healthz`` answers 200 while the event store answers and every projection is within
``PINGJING_HEALTH_MAX_LAG`` events of the log, 503 otherwise, with what is wrong. ``/metrics``
is the Prometheus text format: requests by route, method and status (and their duration),
use cases by command and outcome, the log's head, each projection's position and lag, the
deadlines pending (steps whose SLA clock runs) and the warnings and breaches recorded, and
whether this process leads the scheduler.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from adapters.foreground import Foreground
from adapters.http.services import Services, services
from domain.application import Executed
from domain.errors import PingjingError
from projections import ledger
from projections.runner import STORE_ERRORS

#: What a store or views outage raises (the library wraps most, not all, driver errors).
_LEDGER_COUNTS = (
    f"SELECT COALESCE(SUM(CASE WHEN status = '{ledger.RUNNING}' THEN 1 ELSE 0 END), 0), "  # noqa: S608 - module constants
    "COALESCE(SUM(CASE WHEN warned_at IS NOT NULL THEN 1 ELSE 0 END), 0), "
    f"COALESCE(SUM(CASE WHEN breached_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM {ledger.TABLE}"
)


class _StoreCollector(Collector):
    """Figures read from the store and the views at each scrape."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def collect(self) -> Iterator[Metric]:
        """The store's, the projections' and the scheduler's figures."""
        up = GaugeMetricFamily("pingjing_store_up", "1 when the event store and the views answer, else 0")
        try:
            head = self.svc.runner.head()
            statuses = self.svc.projection_status()
            pending, warned, breached = self.svc.views.query(_LEDGER_COUNTS)[0]
        except STORE_ERRORS:
            up.add_metric([], 0)
            yield up
            yield from self._scheduler()
            return
        up.add_metric([], 1)
        yield up
        yield CounterMetricFamily("pingjing_events_appended", "Events appended to the log (its head position)",
                                  value=head)
        position = GaugeMetricFamily("pingjing_projection_position", "Log position each projection has applied",
                                     labels=["projection"])
        lag = GaugeMetricFamily("pingjing_projection_lag_events", "Events each projection has yet to apply",
                                labels=["projection"])
        for status in statuses:
            position.add_metric([status.name], status.position)
            lag.add_metric([status.name], status.lag)
        yield position
        yield lag
        yield GaugeMetricFamily("pingjing_sla_pending_deadlines", "Steps whose SLA clock is running (in the ledger)",
                                value=int(pending))
        yield CounterMetricFamily("pingjing_sla_warnings_recorded", "SLA warnings recorded", value=int(warned))
        yield CounterMetricFamily("pingjing_sla_breaches_recorded", "SLA breaches recorded", value=int(breached))
        yield from self._scheduler()

    def _scheduler(self) -> Iterator[Metric]:
        state = self.svc.scheduler_state()
        yield GaugeMetricFamily("pingjing_scheduler_enabled", "1 when this process runs the scheduler",
                                value=int(state != "disabled"))
        yield GaugeMetricFamily("pingjing_scheduler_leader", "1 when this process leads the scheduler",
                                value=int(state == "leader"))


class _ForegroundCollector(Collector):
    """How often, and how long, the process's background loops stepped aside for requests."""

    def __init__(self, foreground: Foreground) -> None:
        self.foreground = foreground

    def collect(self) -> Iterator[Metric]:
        """The two counters."""
        yield CounterMetricFamily(
            "pingjing_background_waits", "Times the projection follower or the outbox waited for requests in flight",
            value=self.foreground.waits,
        )
        yield CounterMetricFamily(
            "pingjing_background_waited_seconds", "Seconds the projection follower and the outbox waited for requests",
            value=self.foreground.waited_seconds,
        )


class Metrics:
    """This app's metrics, in a registry of its own (several apps in one process do not mix).

    ``foreground``: the process's requests in flight, whose background loops step aside for
    them (``pingjing serve`` in one process); None where nothing steps aside.
    """

    def __init__(self, svc: Services, foreground: Foreground | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # counters without their *_created series (process-wide, idempotent)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "pingjing_http_requests", "HTTP requests by route, method and status", ["route", "method", "status"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "pingjing_http_request_duration_seconds", "HTTP request duration by route and method", ["route", "method"],
            registry=self.registry,
        )
        self.commands = Counter(
            "pingjing_commands", "Use cases run by command and outcome (ok, not_saved, or the error)",
            ["command", "outcome"], registry=self.registry,
        )
        self.registry.register(_StoreCollector(svc))
        if foreground is not None:
            self.registry.register(_ForegroundCollector(foreground))

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.seconds.labels(route, method).observe(seconds)

    def observe_command(self, executed: Executed) -> None:
        """The application observer: count one use case."""
        outcome = executed.outcome
        if isinstance(outcome, PingjingError):
            label = type(outcome).__name__
        else:
            label = "ok" if executed.saved else "not_saved"
        self.commands.labels(executed.command.name, label).inc()

    def render(self) -> bytes:
        """The Prometheus text format."""
        return generate_latest(self.registry)


def healthz(svc: Annotated[Services, Depends(services)]) -> JSONResponse:
    """200 when the store answers and the views keep up with the log; 503 with the problems otherwise."""
    problems: list[str] = []
    store: dict[str, Any] = {"reachable": False}
    projections: dict[str, dict[str, int]] = {}
    limit = svc.rt.settings.health_max_lag
    try:
        store = {"reachable": True, "head": svc.runner.head()}
        for status in svc.projection_status():
            projections[status.name] = {"position": status.position, "lag": status.lag}
            if status.lag > limit:
                problems.append(f"projection {status.name} is {status.lag} events behind the log (limit {limit})")
    except STORE_ERRORS as error:
        what = "the event store" if not store["reachable"] else "the views"
        problems.append(f"{what} cannot be read: {type(error).__name__}")
    leader = {"leader": "yes", "follower": "no"}.get(svc.scheduler_state(), "disabled")
    body = {
        "status": "unhealthy" if problems else "ok",
        "problems": problems,
        "store": store,
        "projections": projections,
        "scheduler_leader": leader,
        "process": os.getpid(),  # which of several serving processes answered
    }
    return JSONResponse(body, status_code=503 if problems else 200, headers={"Cache-Control": "no-store"})


async def livez() -> Response:
    """200 while the process answers at all; touches nothing else (a liveness probe; ``/healthz`` checks more)."""
    return Response(b"alive\n", media_type="text/plain")


def metrics(request: Request) -> Response:
    """Prometheus text format."""
    found: Metrics = request.app.state.metrics
    return Response(found.render(), media_type=CONTENT_TYPE_LATEST)


def router() -> APIRouter:
    """``/livez``, ``/healthz`` and ``/metrics``."""
    ops = APIRouter(tags=["operations"])
    ops.add_api_route("/livez", livez, methods=["GET"], operation_id="livez", response_class=Response,
                      responses={200: {"content": {"text/plain": {}}, "description": "the process answers"}})
    ops.add_api_route("/healthz", healthz, methods=["GET"], operation_id="healthz",
                      responses={503: {"description": "the store or the views are not usable"}})
    ops.add_api_route("/metrics", metrics, methods=["GET"], operation_id="metrics", response_class=Response,
                      responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text"}})
    return ops
