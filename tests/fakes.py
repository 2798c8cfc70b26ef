"""Hand-written fakes shared by the tests: a clock the test drives, predictable ids."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from domain.application import Executed
from domain.clock import token_from_int


class FakeClock:
    """A clock that only moves when the test moves it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self.current = start

    def now(self) -> datetime:
        """The time the test set."""
        return self.current

    def advance(self, **delta: float) -> datetime:
        """Move forward by ``timedelta(**delta)``."""
        self.current += timedelta(**delta)
        return self.current

    def set(self, moment: datetime) -> None:
        """Jump to ``moment``."""
        self.current = moment


class SequentialIds:
    """Ids and tokens that count up, so tests can predict them."""

    def __init__(self, seed: int = 0) -> None:
        self.counter = seed

    def new_id(self) -> uuid.UUID:
        """The next id."""
        self.counter += 1
        return uuid.UUID(int=self.counter)

    def new_token(self, length: int) -> str:
        """The next token."""
        self.counter += 1
        return token_from_int(self.counter, length)


class RecordingObserver:
    """Keeps every :class:`Executed` the application reports."""

    def __init__(self) -> None:
        self.executed: list[Executed] = []

    def __call__(self, executed: Executed) -> None:
        """Record one."""
        self.executed.append(executed)
