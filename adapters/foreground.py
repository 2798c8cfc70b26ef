"""Requests first: background loops sharing a process with HTTP step aside while requests wait.

``pingjing serve`` on one machine is one process: uvicorn's event loop, the group committer,
the projection follower and the scheduler's jobs (the outbox above all). Python runs one of
their threads at a time. A background loop that folds a page of events or composes and
delivers a few hundred notifications holds the interpreter for its turns, and every request
in flight waits through them: under a burst, the slowest requests were those that met the
outbox at work.

:class:`Foreground` counts the requests in flight (the HTTP middleware tells it). Between
two steps (a page folded, a chunk of notifications delivered) a background loop calls
:meth:`Foreground.step_aside`: when requests are in flight it waits until none is, or at
most ``pause`` seconds, so under sustained load it keeps going, only at a gentler pace.
Nothing is skipped or reordered: the views and the notifications only lag a little more
during a burst (a request that reads the views catches them up itself), and catch up when it
ends. A process without HTTP gives its loops :data:`NO_FOREGROUND`, which never waits.
"""

from __future__ import annotations

import threading
import time

#: The longest a background loop waits between two steps while requests are in flight.
PAUSE_SECONDS = 0.05


class Foreground:
    """Requests in flight in this process, and a wait for background loops until there are none."""

    def __init__(self, *, pause: float = PAUSE_SECONDS) -> None:
        self.pause = pause
        self._in_flight = 0
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        #: Times a background loop waited, and how long in all (``/metrics``: ``pingjing_background_waits``).
        self.waits = 0
        self.waited_seconds = 0.0

    @property
    def in_flight(self) -> int:
        """Requests being answered now."""
        return self._in_flight

    def started(self) -> None:
        """A request began."""
        with self._lock:
            self._in_flight += 1
            self._idle.clear()

    def finished(self) -> None:
        """A request was answered (or failed)."""
        with self._lock:
            self._in_flight -= 1
            if self._in_flight <= 0:
                self._in_flight = 0
                self._idle.set()

    def step_aside(self, *_: object) -> None:
        """Between two steps of a background loop: wait while requests are in flight (at most
        ``pause`` seconds). Takes and ignores any arguments, so it can be a progress callback."""
        if self._idle.is_set():
            return
        started = time.perf_counter()
        self._idle.wait(self.pause)
        waited = time.perf_counter() - started
        with self._lock:  # the follower and the outbox both step aside
            self.waits += 1
            self.waited_seconds += waited


class _NoForeground(Foreground):
    """For a process without HTTP: never waits."""

    def step_aside(self, *_: object) -> None:
        return


#: The foreground of a process that serves no requests.
NO_FOREGROUND: Foreground = _NoForeground()
