"""Group commit: requests arriving together share a transaction, each with its own answer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest
from eventsourcing.persistence import OperationalError

from adapters.http.committer import GroupCommitter
from domain import commands as c
from domain.application import Executed, PingjingApp
from domain.errors import NotFoundError
from tests.conftest import CITIZEN, County

T = TypeVar("T")


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a scenario on an event loop of its own thread (the session's browser keeps one running in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(scenario())).result()


def rating(key: str = "100102", verdict: str = "satisfied") -> c.SubmitRating:
    return c.SubmitRating.model_validate({"target": "officer", "key": key, "verdict": verdict, "service_score": 4,
                                          "attitude_score": 4, "efficiency_score": 4})


class Gate:
    """Holds the writer inside its first transaction until the test lets it go."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, executed: Executed) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(10)


@pytest.fixture
def gated(county: County) -> Iterator[tuple[PingjingApp, Gate, GroupCommitter]]:
    gate = Gate()
    county.app.observers.append(gate)
    committer = GroupCommitter(county.app)
    yield county.app, gate, committer
    gate.release.set()
    committer.stop()


def test_requests_arriving_while_a_transaction_commits_share_the_next_one(
    gated: tuple[PingjingApp, Gate, GroupCommitter],
) -> None:
    app, gate, committer = gated

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(committer.submit(rating(), CITIZEN))
        await asyncio.to_thread(gate.entered.wait, 10)
        rest = [asyncio.ensure_future(committer.submit(rating(verdict="dissatisfied"), CITIZEN)) for _ in range(20)]
        await asyncio.sleep(0.05)
        gate.release.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    before = int(app.recorder.max_notification_id() or 0)
    receipts = run(scenario)
    assert committer.batches == 2
    assert committer.commands == 21
    assert len({r.aggregate_id for r in receipts}) == 21  # type: ignore[attr-defined]
    assert all(r.case_ref for r in receipts[1:])  # type: ignore[attr-defined]
    # one rating event, then per dissatisfied rating: rating, case opened, pushed
    assert int(app.recorder.max_notification_id() or 0) - before == 1 + 20 * 3


def test_a_bad_command_in_a_batch_gets_its_own_error_and_sinks_no_other(
    gated: tuple[PingjingApp, Gate, GroupCommitter],
) -> None:
    _, gate, committer = gated

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(committer.submit(rating(), CITIZEN))
        await asyncio.to_thread(gate.entered.wait, 10)
        batch = [asyncio.ensure_future(committer.submit(rating(key=key), CITIZEN))
                 for key in ("100102", "NOBODY1", "F10103")]
        await asyncio.sleep(0.05)
        gate.release.set()
        return await asyncio.gather(first, *batch, return_exceptions=True)

    outcomes = run(scenario)
    assert isinstance(outcomes[2], NotFoundError)
    assert [type(o).__name__ for i, o in enumerate(outcomes) if i != 2] == ["Receipt"] * 3
    assert committer.batches == 2


def test_stopping_writes_what_was_handed_in_and_refuses_more(county: County) -> None:
    committer = GroupCommitter(county.app)

    async def scenario() -> object:
        return await committer.submit(rating(), CITIZEN)

    receipt = run(scenario)
    committer.stop()
    assert receipt.command == "submit_rating"  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="stopped"):
        run(scenario)


def test_when_the_store_fails_the_commands_queued_behind_the_batch_hear_it_at_once(county: County) -> None:
    app = county.app
    entered, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def failing(items: Any, **_: Any) -> Any:
        calls.append(len(items))
        entered.set()
        release.wait(10)
        raise OperationalError("connection refused")

    app.execute_batch = failing  # type: ignore[method-assign]
    committer = GroupCommitter(app)

    async def scenario() -> list[object]:
        first = asyncio.ensure_future(committer.submit(rating(), CITIZEN))
        await asyncio.to_thread(entered.wait, 10)
        queued = [asyncio.ensure_future(committer.submit(rating(), CITIZEN)) for _ in range(5)]
        await asyncio.sleep(0.05)
        release.set()
        return await asyncio.gather(first, *queued, return_exceptions=True)

    outcomes = run(scenario)
    committer.stop()
    assert [type(o).__name__ for o in outcomes] == ["OperationalError"] * 6
    assert calls == [1]  # the queued five were not tried against the failing store again
