"""Limits on what one client may send: request sizes and requests per address.

- :class:`BodyLimit`, an ASGI middleware, refuses a body larger than its route's limit with a
  413 before the body is read into memory (by ``Content-Length`` when it is sent, and while the
  body streams in when it is not), so a huge form or JSON document costs nothing.
- :class:`AddressLimiter` counts requests per client address in a moving window (the
  ``limits`` library's moving-window strategy, kept in memory: a limit per process, which is
  what a counter against floods needs; the once-per-device rule that must hold across
  processes is the domain's :class:`~domain.ratings.DeviceBallot`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What the staff API accepts at most in one body (a bulk encounter upload of several thousand lines).
API_BODY_LIMIT = 8 * 1024 * 1024
#: What a citizen's form can need: every text field at its longest, in UTF-8, form-encoded, with room.
CITIZEN_BODY_LIMIT = 64 * 1024


class BodyTooLarge(Exception):  # noqa: N818 - a refusal, named as the response says it
    """A request body over its route's limit."""


class BodyLimit:
    """Refuse bodies over the limit of the first matching path prefix (413, a JSON or text message)."""

    def __init__(self, app: ASGIApp, limits: Sequence[tuple[str, int]], default: int) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.default = default

    def limit_for(self, path: str) -> int:
        """The largest body ``path`` accepts."""
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, then count the bytes as they arrive."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, send, limit)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _refuse(scope, send, limit)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    text = f"the request body is larger than this address accepts ({limit // 1024} KiB at most)"
    accept = dict(scope.get("headers", ())).get(b"accept", b"")
    if scope["path"].startswith("/api/"):
        body = json.dumps({"error": "too_large", "message": text}).encode()
        kind = b"application/json"
    elif b"text/html" in accept:
        body = (f'<!doctype html><meta charset="utf-8"><title>413</title>'
                f"<p>提交的内容过长。 The form is too large: {text}.</p>").encode()
        kind = b"text/html; charset=utf-8"
    else:
        body = text.encode()
        kind = b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class Allowance:
    """Whether a request may go on, and when the client may try again if not."""

    allowed: bool
    retry_after: int = 0


class AddressLimiter:
    """At most ``per_minute`` requests per key (an address) in any moving minute; zero: no limit."""

    def __init__(self, per_minute: int = 0, *, per_hour: int = 0) -> None:
        self._items: list[Any] = []
        if per_minute:
            self._items.append(RateLimitItemPerMinute(per_minute))
        if per_hour:
            self._items.append(RateLimitItemPerHour(per_hour))
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return bool(self._items)

    def hit(self, namespace: str, key: str) -> Allowance:
        """Count one request of ``key``; refused (and not counted) once a window is full."""
        for item in self._items:
            if not self._limiter.test(item, namespace, key):
                return Allowance(False, self._retry_after(item, namespace, key))
        for item in self._items:
            self._limiter.hit(item, namespace, key)
        return Allowance(True)

    def check(self, namespace: str, key: str) -> Allowance:
        """Whether ``key`` could make a request now, without counting one."""
        for item in self._items:
            if not self._limiter.test(item, namespace, key):
                return Allowance(False, self._retry_after(item, namespace, key))
        return Allowance(True)

    def _retry_after(self, item: Any, namespace: str, key: str) -> int:
        reset_at, _ = self._limiter.get_window_stats(item, namespace, key)
        return max(1, int(reset_at - time.time()) + 1)
