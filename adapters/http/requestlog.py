"""Every request's id, log line and metrics: a plain ASGI middleware.

The request gets an id (``X-Request-ID``, taken from the request when it carries a sane one),
bound to the structured log and used as the correlation id of the use case it runs; one
``http_request`` log line per request, with the route template, never the query or a body.
Written against ASGI directly rather than as a ``BaseHTTPMiddleware``, which costs a task
and a memory stream per request: this runs on every request of the busiest routes.
"""

from __future__ import annotations

import random
import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.foreground import Foreground
from adapters.http.ops import Metrics

log = structlog.get_logger("pingjing.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Routes probed often: their request lines are logged at debug level only.
QUIET = frozenset({"/livez", "/healthz", "/metrics"})


class RequestLog:
    """Give each request an id; after it, log one line and count it in the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, foreground: Foreground | None = None) -> None:
        self.app = app
        self.metrics = metrics
        #: Told of each request in flight; None where no background loop shares the process.
        self.foreground = foreground

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id bound; log and count it once answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                sent = value.decode("latin-1")
                break
        # 128 random bits as 32 hex digits, like a UUID's: a label to follow a request by, not a
        # secret, so drawn without a system call (``uuid4`` reads the OS's randomness, and the
        # event loop would wait for the interpreter again after it).
        request_id = sent if _REQUEST_ID.match(sent) else f"{random.getrandbits(128):032x}"
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        header = (b"x-request-id", request_id.encode("ascii"))

        async def stamped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        started = time.perf_counter()
        foreground = self.foreground
        if foreground is not None:
            foreground.started()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, stamped)
            finally:
                if foreground is not None:
                    foreground.finished()
                self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        # The route's template, never the concrete path (one series per route, not per case).
        route = getattr(scope.get("route"), "path", None)
        route = route or ("unmatched" if status == 404 else scope["path"])
        method = scope["method"]
        self.metrics.observe_request(route, method, status, seconds)
        staff: Any = scope.get("state", {}).get("staff")
        fields = {"method": method, "route": route, "status": status, "ms": round(seconds * 1000, 2),
                  "actor": str(staff.actor) if staff else None}
        if route in QUIET:
            log.debug("http_request", **fields)
        else:
            log.info("http_request", **fields)
